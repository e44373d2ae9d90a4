/** Fetch (1) v0–v4. */
import { Reader, Writer } from '../codec.js';

export interface FetchPartitionRequest {
  partition: number;
  fetchOffset: number;
  partitionMaxBytes: number;
}
export interface FetchRequest {
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  isolationLevel: number;
  topics: { topic: string; partitions: FetchPartitionRequest[] }[];
}

/** Fetch max_bytes before v3 (no field): effectively unlimited. */
export const fetchMaxBytesDefault = 0x7fffffff;

export function decodeFetch(r: Reader, version: number): FetchRequest {
  r.int32(); // replica_id
  const maxWaitMs = r.int32();
  const minBytes = r.int32();
  const maxBytes = version >= 3 ? r.int32() : fetchMaxBytesDefault;
  const isolationLevel = version >= 4 ? r.int8() : 0;
  const topics = r.array((r) => ({
    topic: r.string(),
    partitions: r.array((r) => ({ partition: r.int32(), fetchOffset: r.int64n(), partitionMaxBytes: r.int32() })),
  }));
  return { maxWaitMs, minBytes, maxBytes, isolationLevel, topics };
}

export interface FetchPartitionResult {
  partition: number;
  errorCode: number;
  highWatermark: number;
  /** Whole stored batches, concatenated. */
  records: Buffer[];
}
export interface FetchResponse {
  topics: { topic: string; partitions: FetchPartitionResult[] }[];
}

export function encodeFetch(res: FetchResponse, version: number): Writer {
  const w = new Writer();
  if (version >= 1) w.int32(0);
  w.array(res.topics, (w, t) => {
    w.string(t.topic);
    w.array(t.partitions, (w, p) => {
      w.int32(p.partition).int16(p.errorCode).int64(p.highWatermark);
      if (version >= 4) w.int64(p.highWatermark).int32(0); // last_stable_offset, aborted_transactions []
      let size = 0;
      for (const b of p.records) size += b.length;
      w.int32(size);
      for (const b of p.records) w.raw(b);
    });
  });
  return w;
}
