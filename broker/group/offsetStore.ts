/**
 * Committed consumer-group offsets, persisted as an append-only JSON-lines file
 * (`group-offsets.jsonl`), compacted to the latest value per (group, topic, partition) on open.
 * A torn last line (crash mid-write) is ignored.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, KafkaError } from '../protocol/errors.js';

export interface CommittedOffset {
  offset: number;
  metadata: string | null;
}

interface Line {
  g: string;
  t: string;
  p: number;
  /** null = removed. */
  o: number | null;
  m?: string | null;
}

export class OffsetStore {
  /** group → topic → partition → committed. */
  readonly groups = new Map<string, Map<string, Map<number, CommittedOffset>>>();
  private fd: number;
  private dirty = false;
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'group-offsets.jsonl');
    if (fs.existsSync(this.file)) {
      for (const text of fs.readFileSync(this.file, 'utf8').split('\n')) {
        if (text.length === 0) continue;
        let line: Line;
        try {
          line = JSON.parse(text) as Line;
        } catch {
          continue;
        }
        if (line.o === null) this.groups.get(line.g)?.get(line.t)?.delete(line.p);
        else this.put(line.g, line.t, line.p, { offset: line.o, metadata: line.m ?? null });
      }
    }
    const tmp = `${this.file}.compact`;
    const lines: string[] = [];
    for (const [g, topics] of this.groups) {
      for (const [t, parts] of topics) for (const [p, c] of parts) lines.push(JSON.stringify({ g, t, p, o: c.offset, m: c.metadata }));
    }
    fs.writeFileSync(tmp, lines.length ? `${lines.join('\n')}\n` : '');
    const fd = fs.openSync(tmp, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, this.file);
    this.fd = fs.openSync(this.file, 'a');
  }

  private put(g: string, t: string, p: number, c: CommittedOffset): void {
    let topics = this.groups.get(g);
    if (!topics) this.groups.set(g, (topics = new Map()));
    let parts = topics.get(t);
    if (!parts) topics.set(t, (parts = new Map()));
    parts.set(p, c);
  }

  get(g: string, t: string, p: number): CommittedOffset | undefined {
    return this.groups.get(g)?.get(t)?.get(p);
  }

  commit(g: string, entries: { topic: string; partition: number; offset: number; metadata: string | null }[]): void {
    if (entries.length === 0) return;
    let out = '';
    for (const e of entries) {
      this.put(g, e.topic, e.partition, { offset: e.offset, metadata: e.metadata });
      out += `${JSON.stringify({ g, t: e.topic, p: e.partition, o: e.offset, m: e.metadata })}\n`;
    }
    fs.writeSync(this.fd, out);
    this.dirty = true;
  }

  /** Drops every group's offsets of a deleted topic. */
  removeTopic(topic: string): void {
    let out = '';
    for (const [g, topics] of this.groups) {
      const parts = topics.get(topic);
      if (!parts) continue;
      for (const p of parts.keys()) out += `${JSON.stringify({ g, t: topic, p, o: null })}\n`;
      topics.delete(topic);
    }
    if (out) {
      fs.writeSync(this.fd, out);
      this.dirty = true;
    }
  }

  flush(): Promise<void> {
    if (!this.dirty) return Promise.resolve();
    this.dirty = false;
    return new Promise((res, rej) =>
      fs.fsync(this.fd, (err) => {
        if (!err) return res();
        this.dirty = true; // not on disk: the next flush tries again
        rej(new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `fsync of ${this.file} failed: ${err.message}`, { cause: err }));
      }),
    );
  }

  close(): void {
    if (this.dirty) fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
  }
}
