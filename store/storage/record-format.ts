/**
 * The on-device (and in-memory block) record format. Pure: bytes in, objects out.
 *
 * A record is a 64-byte header followed by its body, padded to a multiple of 16 bytes:
 *
 *   0  u32 magic 'FRC1'
 *   4  u32 length in bytes (header + body, before padding)
 *   8  u32 CRC-32 of bytes 12..length (everything after this field)
 *  12  u8  flags (bit 0 tombstone, bit 1 user key stored, bit 2 applied by a replicated
 *          write, bit 3 tombstone left by expiry or eviction)
 *  13  u8  set name length
 *  14  u16 bin count
 *  16  f64 write sequence of the block the record was written into
 *  24  u32 generation
 *  28  u32 void time (s since the Aerospike epoch; 0 = never)
 *  32  f64 last-update time (ms since the Unix epoch)
 *  40  20  digest
 *  60  u32 reserved (0)
 *  64  set name bytes; user key (u8 particle type, u32 length, bytes) when flag bit 1;
 *      bins: u8 name length, name, u8 particle type, u32 length, bytes
 *
 * The block write sequence inside every record lets a cold scan tell a record written into the
 * block's current incarnation from a stale one left by an earlier use of the same block.
 */
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { DIGEST_BYTES, RecordOrigin, isExpiredOrigin, isReplicatedOrigin, type Bin, type ParticleTypeId, type RecordOriginId, type UserKey } from '../types.js';

export const RECORD_MAGIC = 0x31435246; // 'FRC1' little-endian
export const RECORD_HEADER_BYTES = 64;
export const RECORD_ALIGN_BYTES = 16;
/** Where the digest sits in the header. */
export const RECORD_DIGEST_OFFSET = 40;

export const RecordFlag = {
  TOMBSTONE: 1,
  HAS_KEY: 2,
  REPLICATED: 4,
  EXPIRED: 8,
} as const;

/** Everything a stored record holds. */
export interface StoredRecord {
  digest: Buffer;
  setName: string;
  generation: number;
  lutMs: number;
  voidTimeS: number;
  tombstone: boolean;
  key?: UserKey;
  bins: Bin[];
  /** Absent = local (flag bits 2-3 clear). */
  origin?: RecordOriginId;
}

function originFlags(o: RecordOriginId | undefined): number {
  return (isReplicatedOrigin(o) ? RecordFlag.REPLICATED : 0) | (isExpiredOrigin(o) ? RecordFlag.EXPIRED : 0);
}

function originOf(flags: number): RecordOriginId {
  const replicated = (flags & RecordFlag.REPLICATED) !== 0;
  if (flags & RecordFlag.EXPIRED) return replicated ? RecordOrigin.REPLICATED_EXPIRED : RecordOrigin.EXPIRED;
  return replicated ? RecordOrigin.REPLICATED : RecordOrigin.LOCAL;
}

export function alignUp(n: number): number {
  return Math.ceil(n / RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES;
}

/** Exact encoded size (before padding). */
export function encodedLength(r: StoredRecord): number {
  const setLen = Buffer.byteLength(r.setName);
  if (setLen > 255) throw new RangeError(`set name is ${setLen} bytes; at most 255`);
  if (r.bins.length > 0xffff) throw new RangeError(`${r.bins.length} bins; at most 65535`);
  let n = RECORD_HEADER_BYTES + setLen;
  if (r.key) n += 5 + r.key.bytes.length;
  for (const b of r.bins) n += 6 + Buffer.byteLength(b.name) + b.bytes.length;
  return n;
}

/** Encodes `r` into a buffer of its own (sealed with `blockSeq` unless `seal` is false). */
export function encodeRecord(r: StoredRecord, blockSeq: number, seal = true): Buffer {
  const length = encodedLength(r);
  // Not zero-filled (small records come from Node's pool): encodeRecordInto writes every byte.
  const buf = Buffer.allocUnsafe(alignUp(length));
  encodeRecordInto(r, buf, 0, length);
  if (seal) sealRecord(buf, blockSeq);
  return buf;
}

/**
 * Encodes `r`, whose encodedLength is `length`, at `buf[off..off + alignUp(length))`, unsealed:
 * every byte is written (CRC, block sequence, reserved header bytes and alignment padding as
 * zeros), so a record's bytes depend on its contents only, whatever the buffer held before.
 * The write buffer encodes straight into its open block this way.
 */
export function encodeRecordInto(r: StoredRecord, buf: Buffer, off: number, length: number): void {
  const end = off + alignUp(length);
  assert(end <= buf.length, 'an encoded record must fit its buffer');
  buf.writeUInt32LE(RECORD_MAGIC, off);
  buf.writeUInt32LE(length, off + 4);
  buf.fill(0, off + 8, off + 12);
  buf.fill(0, off + 16, off + 24);
  buf.fill(0, off + 60, off + RECORD_HEADER_BYTES);
  const setLen = buf.write(r.setName, off + RECORD_HEADER_BYTES, 'utf8');
  buf[off + 12] = (r.tombstone ? RecordFlag.TOMBSTONE : 0) | (r.key ? RecordFlag.HAS_KEY : 0) | originFlags(r.origin);
  buf[off + 13] = setLen;
  buf.writeUInt16LE(r.bins.length, off + 14);
  buf.writeUInt32LE(r.generation >>> 0, off + 24);
  buf.writeUInt32LE(r.voidTimeS >>> 0, off + 28);
  buf.writeDoubleLE(r.lutMs, off + 32);
  r.digest.copy(buf, off + 40, 0, DIGEST_BYTES);
  let o = off + RECORD_HEADER_BYTES + setLen;
  if (r.key) {
    buf[o] = r.key.type;
    buf.writeUInt32LE(r.key.bytes.length, o + 1);
    r.key.bytes.copy(buf, o + 5);
    o += 5 + r.key.bytes.length;
  }
  for (const b of r.bins) {
    const nameLen = buf.write(b.name, o + 1, 'utf8');
    buf[o] = nameLen;
    o += 1 + nameLen;
    buf[o] = b.type;
    buf.writeUInt32LE(b.bytes.length, o + 1);
    b.bytes.copy(buf, o + 5);
    o += 5 + b.bytes.length;
  }
  assert(o === off + length, 'a record encodes to its encodedLength');
  buf.fill(0, o, end);
}

/** Writes `blockSeq` into an encoded record and recomputes its CRC (defrag rewrites use it). */
export function sealRecord(buf: Buffer, blockSeq: number, off = 0): void {
  buf.writeDoubleLE(blockSeq, off + 16);
  const length = buf.readUInt32LE(off + 4);
  buf.writeUInt32LE(crc32(buf.subarray(off + 12, off + length)), off + 8);
}

/** Why bytes at some position are not a valid record. */
export type RecordCheck = 'ok' | 'no-record' | 'bad-length' | 'bad-checksum';

/**
 * Checks the record at `buf[off..]` without decoding it. 'no-record' means the magic is absent
 * (end of the written part of a block); the other failures mean damaged bytes.
 */
export function checkRecord(buf: Buffer, off: number, limit = buf.length): RecordCheck {
  if (off + RECORD_HEADER_BYTES > limit) return 'no-record';
  if (buf.readUInt32LE(off) !== RECORD_MAGIC) return 'no-record';
  const length = buf.readUInt32LE(off + 4);
  if (length < RECORD_HEADER_BYTES || off + length > limit) return 'bad-length';
  if (crc32(buf.subarray(off + 12, off + length)) !== buf.readUInt32LE(off + 8)) return 'bad-checksum';
  return 'ok';
}

/**
 * Checks every record laid end to end in `buf[from..to)` (a write-buffer range about to go to the
 * device). Returns undefined when all are intact, else what is wrong and where.
 */
export function checkRecordRun(buf: Buffer, from: number, to: number): string | undefined {
  let off = from;
  while (off < to) {
    const check = checkRecord(buf, off, to);
    if (check !== 'ok') return `${check} at byte ${off} of [${from}, ${to})`;
    off += alignUp(buf.readUInt32LE(off + 4));
  }
  return off === to ? undefined : `records overrun the range: end ${off} > ${to}`;
}

/**
 * Whether the body of the record at `buf[off..]` (checkRecord said 'ok') is laid out as
 * decodeRecord reads it: set name, user key and bins end exactly at its length. Allocates
 * nothing, so a record taken as is (a replica write stored without decoding) is checked as
 * closely as a decoded one.
 */
export function recordLayoutOk(buf: Buffer, off: number): boolean {
  const end = off + buf.readUInt32LE(off + 4);
  let o = off + RECORD_HEADER_BYTES + buf[off + 13]!;
  if ((buf[off + 12]! & RecordFlag.HAS_KEY) !== 0) {
    if (o + 5 > end) return false;
    o += 5 + buf.readUInt32LE(o + 1);
  }
  for (let i = buf.readUInt16LE(off + 14); i > 0; i--) {
    if (o + 1 > end) return false;
    o += 1 + buf[o]!;
    if (o + 5 > end) return false;
    o += 5 + buf.readUInt32LE(o + 1);
  }
  return o === end;
}

/** Header fields readable without decoding the body (assumes checkRecord said 'ok'). */
export interface RecordHeader {
  length: number;
  paddedLength: number;
  blockSeq: number;
  tombstone: boolean;
  hasKey: boolean;
  binCount: number;
  generation: number;
  voidTimeS: number;
  lutMs: number;
  setName: string;
}

export function readHeader(buf: Buffer, off: number): RecordHeader {
  const length = buf.readUInt32LE(off + 4);
  const flags = buf[off + 12]!;
  const setLen = buf[off + 13]!;
  return {
    length,
    paddedLength: alignUp(length),
    blockSeq: buf.readDoubleLE(off + 16),
    tombstone: (flags & RecordFlag.TOMBSTONE) !== 0,
    hasKey: (flags & RecordFlag.HAS_KEY) !== 0,
    binCount: buf.readUInt16LE(off + 14),
    generation: buf.readUInt32LE(off + 24),
    voidTimeS: buf.readUInt32LE(off + 28),
    lutMs: buf.readDoubleLE(off + 32),
    setName: buf.toString('utf8', off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + setLen),
  };
}

export function digestAt(buf: Buffer, off: number): Buffer {
  return Buffer.from(buf.subarray(off + RECORD_DIGEST_OFFSET, off + RECORD_DIGEST_OFFSET + DIGEST_BYTES));
}

/** Decodes a checked record; bin and key bytes are copies, safe to keep. */
export function decodeRecord(buf: Buffer, off = 0): StoredRecord {
  const h = readHeader(buf, off);
  const end = off + h.length;
  let o = off + RECORD_HEADER_BYTES + buf[off + 13]!;
  const need = (n: number) => {
    if (o + n > end) throw new RangeError(`record body overruns its length at byte ${o - off}`);
  };
  let key: UserKey | undefined;
  if (h.hasKey) {
    need(5);
    const len = buf.readUInt32LE(o + 1);
    need(5 + len);
    key = { type: buf[o]! as ParticleTypeId, bytes: Buffer.from(buf.subarray(o + 5, o + 5 + len)) };
    o += 5 + len;
  }
  const count = buf.readUInt16LE(off + 14);
  const bins: Bin[] = [];
  for (let i = 0; i < count; i++) {
    need(1);
    const nameLen = buf[o]!;
    need(1 + nameLen + 5);
    const name = buf.toString('utf8', o + 1, o + 1 + nameLen);
    o += 1 + nameLen;
    const type = buf[o]! as ParticleTypeId;
    const len = buf.readUInt32LE(o + 1);
    need(5 + len);
    bins.push({ name, type, bytes: Buffer.from(buf.subarray(o + 5, o + 5 + len)) });
    o += 5 + len;
  }
  const r: StoredRecord = {
    digest: digestAt(buf, off),
    setName: h.setName,
    generation: h.generation,
    lutMs: h.lutMs,
    voidTimeS: h.voidTimeS,
    tombstone: h.tombstone,
    bins,
  };
  if (key) r.key = key;
  const origin = originOf(buf[off + 12]!);
  if (origin !== RecordOrigin.LOCAL) r.origin = origin;
  return r;
}
