/**
 * Topics on disk: `<dataDir>/topics/<name>/topic.json` (partition count and topic configs) and
 * one directory per partition holding its segments. Create, delete, lookup and retention sweep.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { PartitionLog, logConfigDefaults, type LogConfig } from './partitionLog.js';
import { fsyncDir } from './segment.js';

export const topicNameLengthMax = 249;
export const partitionCountMax = 10_000;

export interface TopicMeta {
  partitions: number;
  configs: Record<string, string>;
}

export interface Topic {
  name: string;
  meta: TopicMeta;
  partitions: PartitionLog[];
}

/** Topic configs the broker understands, mapped onto LogConfig. */
export const topicConfigKeys = ['retention.ms', 'retention.bytes', 'segment.bytes', 'cleanup.policy', 'max.message.bytes'] as const;

export function validateTopicName(name: string): void {
  if (name.length === 0 || name.length > topicNameLengthMax || name === '.' || name === '..' || !/^[a-zA-Z0-9._-]+$/.test(name)) {
    throw new KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, `invalid topic name ${JSON.stringify(name)}`);
  }
}

export class TopicStore {
  readonly topics = new Map<string, Topic>();
  private readonly root: string;

  constructor(dataDir: string, readonly defaults: LogConfig) {
    this.root = path.join(dataDir, 'topics');
    fs.mkdirSync(this.root, { recursive: true });
    fs.rmSync(path.join(dataDir, 'deleted'), { recursive: true, force: true });
    for (const name of fs.readdirSync(this.root)) {
      const metaFile = path.join(this.root, name, 'topic.json');
      if (!fs.existsSync(metaFile)) continue;
      const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as TopicMeta;
      this.openTopic(name, meta);
    }
  }

  logConfig(meta: TopicMeta): LogConfig {
    const num = (k: string, d: number): number => {
      const v = meta.configs[k];
      return v !== undefined && /^-?\d+$/.test(v) ? Number(v) : d;
    };
    return {
      segmentBytes: num('segment.bytes', this.defaults.segmentBytes),
      retentionBytes: num('retention.bytes', this.defaults.retentionBytes),
      retentionMs: num('retention.ms', this.defaults.retentionMs),
      indexIntervalBytes: this.defaults.indexIntervalBytes,
      highWatermarkOnFsync: this.defaults.highWatermarkOnFsync,
    };
  }

  private openTopic(name: string, meta: TopicMeta): Topic {
    const config = this.logConfig(meta);
    const partitions: PartitionLog[] = [];
    for (let p = 0; p < meta.partitions; p++) partitions.push(PartitionLog.open(path.join(this.root, name, String(p)), config));
    const topic = { name, meta, partitions };
    this.topics.set(name, topic);
    return topic;
  }

  get(name: string): Topic | undefined {
    return this.topics.get(name);
  }

  partition(name: string, index: number): PartitionLog | undefined {
    return this.topics.get(name)?.partitions[index];
  }

  create(name: string, partitions: number, configs: Record<string, string> = {}, validateOnly = false): Topic | null {
    validateTopicName(name);
    if (this.topics.has(name)) throw new KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${name} exists`);
    if (!Number.isInteger(partitions) || partitions <= 0 || partitions > partitionCountMax) {
      throw new KafkaError(ErrorCode.INVALID_PARTITIONS, `partition count ${partitions}`);
    }
    if (validateOnly) return null;
    const dir = path.join(this.root, name);
    fs.mkdirSync(dir, { recursive: true });
    const meta: TopicMeta = { partitions, configs };
    const tmp = path.join(dir, `topic.json.${randomUUID()}`);
    const fd = fs.openSync(tmp, 'w');
    fs.writeSync(fd, JSON.stringify(meta));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, path.join(dir, 'topic.json'));
    const topic = this.openTopic(name, meta);
    fsyncDir(dir);
    fsyncDir(this.root);
    return topic;
  }

  delete(name: string): void {
    const topic = this.topics.get(name);
    if (!topic) throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `no topic ${name}`);
    this.topics.delete(name);
    for (const p of topic.partitions) p.close();
    const trash = path.join(path.dirname(this.root), 'deleted');
    fs.mkdirSync(trash, { recursive: true });
    const dest = path.join(trash, `${name}-${randomUUID()}`);
    fs.renameSync(path.join(this.root, name), dest);
    fs.rm(dest, { recursive: true, force: true }, () => {});
  }

  enforceRetention(nowMs: number): number {
    let removed = 0;
    for (const t of this.topics.values()) for (const p of t.partitions) removed += p.enforceRetention(nowMs);
    return removed;
  }

  close(): void {
    for (const t of this.topics.values()) for (const p of t.partitions) p.close();
  }
}

export { logConfigDefaults };
