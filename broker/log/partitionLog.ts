/**
 * The log of one partition: an ordered list of segments in one directory. Assigns offsets on
 * append (rewriting the batch's base offset, outside its CRC), serves whole batches to fetches,
 * finds offsets by timestamp, deletes whole old segments for retention, and recovers the active
 * segment (truncating a torn tail) on open.
 */
import fs from 'node:fs';
import path from 'node:path';
import { assignBaseOffset, iterateBatches, recordTimestamps, type BatchHeader } from '../protocol/recordBatch.js';
import { ProducerState, lastSequence } from './producerState.js';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { Segment, segmentFileName } from './segment.js';

export interface LogConfig {
  segmentBytes: number;
  /** -1 = unlimited. */
  retentionBytes: number;
  /** -1 = unlimited. */
  retentionMs: number;
  indexIntervalBytes: number;
  /**
   * When true (the `fsync` flush policy) the high watermark, the end of what fetches and
   * ListOffsets show, is the end of the fsynced log, so nothing a consumer saw can vanish in a
   * crash. When false it is the log end offset.
   */
  highWatermarkOnFsync: boolean;
}

export const logConfigDefaults: LogConfig = {
  segmentBytes: 64 * 1024 * 1024,
  retentionBytes: -1,
  retentionMs: 7 * 24 * 3600 * 1000,
  indexIntervalBytes: 4096,
  highWatermarkOnFsync: false,
};

export interface AppendResult {
  baseOffset: number;
  duplicate: boolean;
}

export class PartitionLog {
  readonly segments: Segment[] = [];
  private readonly producers = new ProducerState();
  /** Log end offset as of the last completed fsync (everything below it is on disk). */
  private durableOffset = 0;

  private constructor(readonly dir: string, public config: LogConfig) {}

  static open(dir: string, config: LogConfig): PartitionLog {
    fs.mkdirSync(dir, { recursive: true });
    const log = new PartitionLog(dir, config);
    const bases = fs
      .readdirSync(dir)
      .filter((f) => /^\d{20}\.log$/.test(f))
      .map((f) => Number(f.slice(0, 20)))
      .sort((a, b) => a - b);
    if (bases.length === 0) {
      log.segments.push(Segment.create(dir, 0, config.indexIntervalBytes));
      return log;
    }
    bases.forEach((base, i) => {
      const active = i === bases.length - 1;
      const seg = Segment.open(dir, base, config.indexIntervalBytes, active, ({ header }) => log.noteProducer(header));
      log.segments.push(seg);
    });
    log.durableOffset = log.logEndOffset;
    return log;
  }

  private noteProducer(h: BatchHeader): void {
    if (h.producerId >= 0) {
      this.producers.record(h.producerId, h.producerEpoch, h.baseSequence, lastSequence(h.baseSequence, h.lastOffsetDelta), h.baseOffset);
    }
  }

  get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }
  get logStartOffset(): number {
    return this.segments[0]!.baseOffset;
  }
  /** Log end offset = high watermark on a single node. */
  get logEndOffset(): number {
    return this.active.nextOffset;
  }
  /** What consumers may read up to (exclusive). */
  get highWatermark(): number {
    return this.config.highWatermarkOnFsync ? this.durableOffset : this.logEndOffset;
  }
  get sizeBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.sizeBytes;
    return n;
  }

  /**
   * Appends a validated batch (mutated in place: base offset and leader epoch). Duplicates of a
   * recent idempotent batch are not stored and return the original offset.
   */
  append(batch: Buffer, h: BatchHeader): AppendResult {
    const lastSeq = lastSequence(h.baseSequence, h.lastOffsetDelta);
    const dup = this.producers.check(h.producerId, h.producerEpoch, h.baseSequence, lastSeq);
    if (dup !== null) return { baseOffset: dup, duplicate: true };
    if (this.active.sizeBytes > 0 && this.active.sizeBytes + batch.length > this.config.segmentBytes) this.roll();
    const baseOffset = this.logEndOffset;
    assignBaseOffset(batch, baseOffset);
    this.active.append(batch, { ...h, baseOffset });
    this.producers.record(h.producerId, h.producerEpoch, h.baseSequence, lastSeq, baseOffset);
    return { baseOffset, duplicate: false };
  }

  /**
   * Starts a new active segment. On a full disk (or any I/O error) nothing changes and the append
   * fails with KAFKA_STORAGE_ERROR: the current segment stays active (over segmentBytes for a
   * while is harmless), reads go on, and the next append tries the roll again.
   */
  private roll(): void {
    const old = this.active;
    try {
      old.fsyncSync();
    } catch (err) {
      throw new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `cannot flush segment ${segmentFileName(old.baseOffset, '.log')} before rolling: ${(err as Error).message}`, { cause: err });
    }
    this.segments.push(Segment.create(this.dir, old.nextOffset, this.config.indexIntervalBytes));
  }

  /** Whole batches from `offset` below the high watermark; empty at it. Caller checks the range first. */
  read(offset: number, maxBytes: number): Buffer[] {
    const hw = this.highWatermark;
    if (offset >= hw) return [];
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i]!;
      if (seg.baseOffset <= offset) {
        let out = seg.read(offset, maxBytes);
        // Offset at the very end of a non-active segment: continue in the next one.
        if (out.length === 0 && i < this.segments.length - 1) out = this.segments[i + 1]!.read(offset, maxBytes);
        return hw < this.logEndOffset ? trimAt(out, hw) : out;
      }
    }
    return [];
  }

  /** Smallest offset whose record timestamp is >= ts, with that timestamp; null if none. */
  offsetForTimestamp(ts: number): { offset: number; timestamp: number } | null {
    const found = this.findTimestamp(ts);
    return found !== null && found.offset < this.highWatermark ? found : null;
  }

  private findTimestamp(ts: number): { offset: number; timestamp: number } | null {
    for (const seg of this.segments) {
      const found = seg.findBatchByTimestamp(ts);
      if (found === null) continue;
      const records = recordTimestamps(found.batch);
      if (records === null) return { offset: found.header.baseOffset, timestamp: found.header.maxTimestamp };
      for (const r of records) if (r.timestamp >= ts) return r;
      return { offset: found.header.baseOffset, timestamp: found.header.maxTimestamp };
    }
    return null;
  }

  /** Deletes whole non-active segments beyond the size or age limits. Returns segments removed. */
  enforceRetention(nowMs: number): number {
    let removed = 0;
    const { retentionBytes, retentionMs } = this.config;
    let total = this.sizeBytes;
    while (this.segments.length > 1) {
      const oldest = this.segments[0]!;
      const tooBig = retentionBytes >= 0 && total - oldest.sizeBytes >= retentionBytes;
      const newestMs = oldest.maxTimestamp >= 0 ? oldest.maxTimestamp : oldest.lastModifiedMs;
      const tooOld = retentionMs >= 0 && nowMs - newestMs > retentionMs;
      if (!tooBig && !tooOld) break;
      total -= oldest.sizeBytes;
      oldest.deleteFiles();
      this.segments.shift();
      removed++;
    }
    return removed;
  }

  /** fsync of every segment written since the last flush; then the high watermark moves up. */
  async flush(): Promise<void> {
    const end = this.logEndOffset;
    await Promise.all(this.segments.map((s) => s.fsync()));
    if (end > this.durableOffset) this.durableOffset = end;
  }

  get dirty(): boolean {
    return this.active.dirty;
  }

  close(): void {
    for (const s of this.segments) {
      if (s.dirty) s.fsyncSync();
      s.close();
    }
  }

  static segmentFiles(dir: string): string[] {
    return fs.readdirSync(dir).filter((f) => f.endsWith('.log')).map((f) => path.join(dir, f));
  }
}

/** Drops the batches at or beyond `end` from whole-batch chunks. */
function trimAt(chunks: Buffer[], end: number): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) {
    let keep = 0;
    for (const { at, header } of iterateBatches(c)) {
      if (header.baseOffset >= end) break;
      keep = at + header.sizeBytes;
    }
    if (keep > 0) out.push(keep === c.length ? c : c.subarray(0, keep));
    if (keep < c.length) break;
  }
  return out;
}
