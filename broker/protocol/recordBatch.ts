/**
 * Record batch (magic 2) header reader, splitter and validator, plus a record walker used for
 * timestamp lookups. Pure functions over Buffers.
 */
import { gunzipSync } from 'node:zlib';
import { Reader } from './codec.js';
import { crc32c } from './crc32c.js';
import { ErrorCode, KafkaError } from './errors.js';

export const batchOverheadBytes = 61;
/** Bytes before batch_length's coverage starts (base_offset + batch_length). */
export const batchLogOverheadBytes = 12;
export const crcStartByte = 21;

export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;

export interface BatchHeader {
  baseOffset: number;
  /** Total bytes of the batch including the 12-byte log overhead. */
  sizeBytes: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** Reads the fixed header of the batch starting at `at`; null if fewer than 61 bytes remain. */
export function readBatchHeader(buf: Buffer, at = 0): BatchHeader | null {
  if (buf.length - at < batchOverheadBytes) return null;
  return {
    baseOffset: Number(buf.readBigInt64BE(at)),
    sizeBytes: buf.readInt32BE(at + 8) + batchLogOverheadBytes,
    magic: buf.readInt8(at + 16),
    crc: buf.readUInt32BE(at + 17),
    attributes: buf.readInt16BE(at + 21),
    lastOffsetDelta: buf.readInt32BE(at + 23),
    baseTimestamp: Number(buf.readBigInt64BE(at + 27)),
    maxTimestamp: Number(buf.readBigInt64BE(at + 35)),
    producerId: Number(buf.readBigInt64BE(at + 43)),
    producerEpoch: buf.readInt16BE(at + 51),
    baseSequence: buf.readInt32BE(at + 53),
    recordCount: buf.readInt32BE(at + 57),
  };
}

export function batchCrcValid(batch: Buffer): boolean {
  return crc32c(batch, crcStartByte, batch.length) === batch.readUInt32BE(17);
}

/** Rewrites base offset and partition leader epoch in place (both outside the CRC). */
export function assignBaseOffset(batch: Buffer, baseOffset: number, leaderEpoch = 0): void {
  batch.writeBigInt64BE(BigInt(baseOffset), 0);
  batch.writeInt32BE(leaderEpoch, 12);
}

/**
 * Validates a produced `records` blob: exactly one magic-2 batch, sane lengths, CRC32C, record
 * count consistent with last offset delta, not a control batch. Throws KafkaError.
 */
export function validateProducedBatch(records: Buffer, maxBatchBytes: number): BatchHeader {
  const h = readBatchHeader(records);
  if (h === null) throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, 'records shorter than a batch header');
  if (h.magic !== 2) throw new KafkaError(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, `magic ${h.magic}`);
  if (h.sizeBytes < batchOverheadBytes || h.sizeBytes > records.length) {
    throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, `batch length ${h.sizeBytes} vs ${records.length} bytes`);
  }
  if (h.sizeBytes !== records.length) throw new KafkaError(ErrorCode.INVALID_RECORD, 'not exactly one batch');
  if (h.sizeBytes > maxBatchBytes) throw new KafkaError(ErrorCode.MESSAGE_TOO_LARGE, `batch of ${h.sizeBytes} bytes`);
  if (!batchCrcValid(records)) throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, 'CRC32C mismatch');
  if (h.recordCount <= 0 || h.lastOffsetDelta + 1 !== h.recordCount) {
    throw new KafkaError(ErrorCode.INVALID_RECORD, `record count ${h.recordCount}, last delta ${h.lastOffsetDelta}`);
  }
  if (h.attributes & 0x20) throw new KafkaError(ErrorCode.INVALID_RECORD, 'control batch from a client');
  if ((h.attributes & 0x07) > Compression.zstd) throw new KafkaError(ErrorCode.CORRUPT_MESSAGE, 'unknown codec');
  if ((h.attributes & 0x07) === Compression.zstd) {
    throw new KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, 'zstd needs Produce v7');
  }
  if (h.producerId >= 0 && h.baseSequence < 0) throw new KafkaError(ErrorCode.INVALID_RECORD, 'negative base sequence');
  return h;
}

/**
 * Walks a buffer of stored batches. Yields each whole batch; stops at the first incomplete or
 * malformed one (callers treat the rest as a torn tail).
 */
export function* iterateBatches(buf: Buffer, start = 0): Generator<{ at: number; header: BatchHeader }> {
  let at = start;
  for (;;) {
    const h = readBatchHeader(buf, at);
    if (h === null || h.sizeBytes < batchOverheadBytes || at + h.sizeBytes > buf.length) return;
    yield { at, header: h };
    at += h.sizeBytes;
  }
}

export interface RecordInfo {
  offset: number;
  timestamp: number;
}

/**
 * Record offsets and timestamps of one batch (uncompressed or gzip). Returns null for codecs the
 * broker cannot decode (snappy, lz4, zstd).
 */
export function recordTimestamps(batch: Buffer): RecordInfo[] | null {
  const h = readBatchHeader(batch);
  if (h === null) return null;
  const codec = h.attributes & 0x07;
  let body = batch.subarray(batchOverheadBytes, h.sizeBytes);
  if (codec === Compression.gzip) body = gunzipSync(body);
  else if (codec !== Compression.none) return null;
  const logAppend = (h.attributes & 0x08) !== 0;
  const r = new Reader(body);
  const out: RecordInfo[] = [];
  for (let i = 0; i < h.recordCount && r.remaining > 0; i++) {
    const len = r.varint();
    const end = r.offset + len;
    r.int8();
    const tsDelta = r.varint();
    const offDelta = r.varint();
    out.push({ offset: h.baseOffset + offDelta, timestamp: logAppend ? h.maxTimestamp : h.baseTimestamp + tsDelta });
    r.offset = end;
  }
  return out;
}
