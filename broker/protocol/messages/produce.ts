/** Produce (0) v0–v3 (v3 carries magic-2 record batches). */
import { Reader, Writer } from '../codec.js';

export interface ProducePartition {
  index: number;
  records: Buffer | null;
}
export interface ProduceRequest {
  transactionalId: string | null;
  acks: number;
  timeoutMs: number;
  topics: { name: string; partitions: ProducePartition[] }[];
}

export function decodeProduce(r: Reader, version: number): ProduceRequest {
  const transactionalId = version >= 3 ? r.nullableString() : null;
  const acks = r.int16();
  const timeoutMs = r.int32();
  const topics = r.array((r) => ({
    name: r.string(),
    partitions: r.array((r) => ({ index: r.int32(), records: r.nullableBytes() })),
  }));
  return { transactionalId, acks, timeoutMs, topics };
}

export interface ProducePartitionResult {
  index: number;
  errorCode: number;
  baseOffset: number;
}
export interface ProduceResponse {
  topics: { name: string; partitions: ProducePartitionResult[] }[];
}

export function encodeProduce(res: ProduceResponse, version: number): Writer {
  const w = new Writer();
  w.array(res.topics, (w, t) => {
    w.string(t.name);
    w.array(t.partitions, (w, p) => {
      w.int32(p.index).int16(p.errorCode).int64(p.baseOffset);
      if (version >= 2) w.int64(-1);
    });
  });
  if (version >= 1) w.int32(0);
  return w;
}
