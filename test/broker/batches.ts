/** Test-side encoder of magic-2 record batches (uncompressed), independent of the broker's reader. */
import { crc32c } from '../../broker/protocol/crc32c.js';

function varint(n: number): number[] {
  let v = n >= 0 ? n * 2 : -n * 2 - 1;
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

export interface BatchSpec {
  values: string[];
  timestamps?: number[];
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
}

export function buildBatch(spec: BatchSpec): Buffer {
  const ts = spec.timestamps ?? spec.values.map(() => Date.now());
  const base = ts[0]!;
  const records = spec.values.map((v, i) => {
    const value = Buffer.from(v);
    const body = Buffer.from([0, ...varint(ts[i]! - base), ...varint(i), ...varint(-1), ...varint(value.length), ...value, ...varint(0)]);
    return Buffer.concat([Buffer.from(varint(body.length)), body]);
  });
  const recs = Buffer.concat(records);
  const b = Buffer.alloc(61 + recs.length);
  b.writeBigInt64BE(0n, 0);
  b.writeInt32BE(b.length - 12, 8);
  b.writeInt32BE(-1, 12);
  b.writeInt8(2, 16);
  b.writeInt16BE(0, 21);
  b.writeInt32BE(spec.values.length - 1, 23);
  b.writeBigInt64BE(BigInt(base), 27);
  b.writeBigInt64BE(BigInt(Math.max(...ts)), 35);
  b.writeBigInt64BE(BigInt(spec.producerId ?? -1), 43);
  b.writeInt16BE(spec.producerEpoch ?? -1, 51);
  b.writeInt32BE(spec.baseSequence ?? -1, 53);
  b.writeInt32BE(spec.values.length, 57);
  recs.copy(b, 61);
  b.writeUInt32BE(crc32c(b, 21), 17);
  return b;
}

/** A Produce v3 request frame (size prefix included) for one partition. */
export function produceFrame(topic: string, partition: number, records: Buffer, acks = -1, correlationId = 1): Buffer {
  const clientId = Buffer.from('raw');
  const topicBytes = Buffer.from(topic);
  const parts: Buffer[] = [];
  const head = Buffer.alloc(8);
  head.writeInt16BE(0, 0);
  head.writeInt16BE(3, 2);
  head.writeInt32BE(correlationId, 4);
  parts.push(head, int16(clientId.length), clientId);
  parts.push(int16(-1)); // transactional_id
  parts.push(int16(acks), int32(5000), int32(1), int16(topicBytes.length), topicBytes, int32(1), int32(partition), int32(records.length), records);
  const body = Buffer.concat(parts);
  return Buffer.concat([int32(body.length), body]);
}

export function int16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(v);
  return b;
}
export function int32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
}
