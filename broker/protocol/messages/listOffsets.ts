/** ListOffsets (2) v0–v2. */
import { Reader, Writer } from '../codec.js';

export const ListOffsetsTimestamp = { latest: -1, earliest: -2 } as const;

export interface ListOffsetsRequest {
  topics: { name: string; partitions: { index: number; timestamp: number }[] }[];
}

export function decodeListOffsets(r: Reader, version: number): ListOffsetsRequest {
  r.int32(); // replica_id
  if (version >= 2) r.int8(); // isolation_level
  const topics = r.array((r) => ({
    name: r.string(),
    partitions: r.array((r) => {
      const index = r.int32();
      const timestamp = r.int64n();
      if (version === 0) r.int32(); // max_num_offsets
      return { index, timestamp };
    }),
  }));
  return { topics };
}

export interface ListOffsetsPartitionResult {
  index: number;
  errorCode: number;
  timestamp: number;
  offset: number;
}
export interface ListOffsetsResponse {
  topics: { name: string; partitions: ListOffsetsPartitionResult[] }[];
}

export function encodeListOffsets(res: ListOffsetsResponse, version: number): Writer {
  const w = new Writer();
  if (version >= 2) w.int32(0);
  w.array(res.topics, (w, t) => {
    w.string(t.name);
    w.array(t.partitions, (w, p) => {
      w.int32(p.index).int16(p.errorCode);
      if (version === 0) w.array(p.offset >= 0 ? [p.offset] : [], (w, o) => w.int64(o));
      else w.int64(p.timestamp).int64(p.offset);
    });
  });
  return w;
}
