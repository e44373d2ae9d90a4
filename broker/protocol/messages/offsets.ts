/** OffsetCommit (8) v0–v2 and OffsetFetch (9) v0–v3. */
import { Reader, Writer } from '../codec.js';

export interface OffsetCommitRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  topics: { name: string; partitions: { index: number; offset: number; metadata: string | null }[] }[];
}
export function decodeOffsetCommit(r: Reader, version: number): OffsetCommitRequest {
  const groupId = r.string();
  const generationId = version >= 1 ? r.int32() : -1;
  const memberId = version >= 1 ? r.string() : '';
  if (version >= 2) r.int64(); // retention_time_ms
  const topics = r.array((r) => ({
    name: r.string(),
    partitions: r.array((r) => {
      const index = r.int32();
      const offset = r.int64n();
      if (version === 1) r.int64(); // commit_timestamp
      return { index, offset, metadata: r.nullableString() };
    }),
  }));
  return { groupId, generationId, memberId, topics };
}

export interface TopicPartitionErrors {
  name: string;
  partitions: { index: number; errorCode: number }[];
}
export function encodeOffsetCommit(topics: TopicPartitionErrors[], version: number): Writer {
  const w = new Writer();
  if (version >= 3) w.int32(0);
  return w.array(topics, (w, t) => {
    w.string(t.name);
    w.array(t.partitions, (w, p) => w.int32(p.index).int16(p.errorCode));
  });
}

export interface OffsetFetchRequest {
  groupId: string;
  /** null = every partition with a committed offset. */
  topics: { name: string; partitions: number[] }[] | null;
}
export function decodeOffsetFetch(r: Reader): OffsetFetchRequest {
  const groupId = r.string();
  const topics = r.nullableArray((r) => ({ name: r.string(), partitions: r.array((r) => r.int32()) }));
  return { groupId, topics };
}

export interface OffsetFetchTopic {
  name: string;
  partitions: { index: number; offset: number; metadata: string | null; errorCode: number }[];
}
export function encodeOffsetFetch(topics: OffsetFetchTopic[], errorCode: number, version: number): Writer {
  const w = new Writer();
  if (version >= 3) w.int32(0);
  w.array(topics, (w, t) => {
    w.string(t.name);
    w.array(t.partitions, (w, p) => w.int32(p.index).int64(p.offset).nullableString(p.metadata).int16(p.errorCode));
  });
  if (version >= 2) w.int16(errorCode);
  return w;
}
