/**
 * The Kafka message ferry ships: one message per record version. Pure codec.
 *
 * Kafka key: the 20-byte record digest. Headers: `ferry-format` ("1"), `ferry-site` (source site),
 * `ferry-ns` (namespace), `ferry-partition` (store partition, decimal). Value (format 1):
 *
 *   u8  magic 0xFE
 *   u8  format 1
 *   u8  flags: bit 0 tombstone, bit 1 user key present, bit 2 the tombstone was left by
 *       expiry or eviction at the source (see the expiry rule in docs/xdr.md)
 *   u8  set name length, then the set name (UTF-8)
 *   u32 generation (BE)
 *   f64 last-update time, ms since the Unix epoch (BE)
 *   u32 void time, s since the Aerospike epoch, 0 = never (BE)
 *   [user key: u8 particle type, u32 length, bytes]
 *   u16 bin count, then per bin: u8 name length, name, u8 particle type, u32 length, bytes
 *
 * Values keep their Aerospike particle type and bytes, so every type (lists, maps, GeoJSON,
 * language blobs) arrives intact. See docs/xdr.md.
 */
import { computeDigest } from '../digest.js';
import { DIGEST_BYTES, RecordOrigin, isExpiredOrigin, type Bin, type ParticleTypeId, type RecordVersion, type UserKey } from '../types.js';

export const SHIP_FORMAT = 1;
const MAGIC = 0xfe;
export const Header = {
  FORMAT: 'ferry-format',
  SITE: 'ferry-site',
  NAMESPACE: 'ferry-ns',
  PARTITION: 'ferry-partition',
} as const;

export class ShipCodecError extends Error {
  readonly code = 'SHIP_DECODE';
  constructor(message: string) {
    super(message);
    this.name = 'ShipCodecError';
  }
}

export interface ShipMessage {
  key: Buffer;
  value: Buffer;
  headers: Record<string, string>;
}

export function encodeVersion(v: RecordVersion, site: string, pid: number): ShipMessage {
  const set = Buffer.from(v.set, 'utf8');
  if (set.length > 255) throw new RangeError(`set name of ${set.length} bytes`);
  let n = 4 + set.length + 16 + 2;
  if (v.key) n += 5 + v.key.bytes.length;
  const bins = v.tombstone ? [] : v.bins;
  const names = bins.map((b) => Buffer.from(b.name, 'utf8'));
  bins.forEach((b, i) => (n += 6 + names[i]!.length + b.bytes.length));
  const out = Buffer.alloc(n);
  let o = 0;
  out[o++] = MAGIC;
  out[o++] = SHIP_FORMAT;
  out[o++] = (v.tombstone ? 1 : 0) | (v.key ? 2 : 0) | (v.tombstone && isExpiredOrigin(v.origin) ? 4 : 0);
  out[o++] = set.length;
  set.copy(out, o);
  o += set.length;
  out.writeUInt32BE(v.generation >>> 0, o);
  out.writeDoubleBE(v.lutMs, o + 4);
  out.writeUInt32BE(v.voidTimeS >>> 0, o + 12);
  o += 16;
  if (v.key) {
    out[o] = v.key.type;
    out.writeUInt32BE(v.key.bytes.length, o + 1);
    v.key.bytes.copy(out, o + 5);
    o += 5 + v.key.bytes.length;
  }
  out.writeUInt16BE(bins.length, o);
  o += 2;
  bins.forEach((b, i) => {
    const name = names[i]!;
    out[o] = name.length;
    name.copy(out, o + 1);
    o += 1 + name.length;
    out[o] = b.type;
    out.writeUInt32BE(b.bytes.length, o + 1);
    b.bytes.copy(out, o + 5);
    o += 5 + b.bytes.length;
  });
  return {
    key: v.digest,
    value: out,
    headers: { [Header.FORMAT]: String(SHIP_FORMAT), [Header.SITE]: site, [Header.NAMESPACE]: v.namespace, [Header.PARTITION]: String(pid) },
  };
}

/** Decodes a shipped message; throws ShipCodecError saying what is wrong. */
export function decodeVersion(key: Buffer | null, value: Buffer | null, headers: Record<string, string | undefined>): RecordVersion {
  if (!key || key.length !== DIGEST_BYTES) throw new ShipCodecError(`key must be a ${DIGEST_BYTES}-byte digest, got ${key ? key.length : 'none'}`);
  if (!value || value.length < 22) throw new ShipCodecError(`value of ${value ? value.length : 0} bytes is too short`);
  const namespace = headers[Header.NAMESPACE];
  if (!namespace) throw new ShipCodecError(`header ${Header.NAMESPACE} is missing`);
  if (value[0] !== MAGIC) throw new ShipCodecError(`bad magic 0x${value[0]!.toString(16)}`);
  if (value[1] !== SHIP_FORMAT) throw new ShipCodecError(`unsupported format ${value[1]}`);
  let o = 2;
  const need = (k: number) => {
    if (o + k > value.length) throw new ShipCodecError(`value truncated at byte ${o} (needs ${k} more)`);
  };
  const flags = value[o++]!;
  const setLen = value[o++]!;
  need(setLen + 16);
  const set = value.toString('utf8', o, o + setLen);
  o += setLen;
  const generation = value.readUInt32BE(o);
  const lutMs = value.readDoubleBE(o + 4);
  const voidTimeS = value.readUInt32BE(o + 12);
  o += 16;
  if (!Number.isFinite(lutMs) || lutMs < 0) throw new ShipCodecError(`bad last-update time ${lutMs}`);
  let userKey: UserKey | undefined;
  if (flags & 2) {
    need(5);
    const len = value.readUInt32BE(o + 1);
    need(5 + len);
    userKey = { type: value[o]! as ParticleTypeId, bytes: Buffer.from(value.subarray(o + 5, o + 5 + len)) };
    o += 5 + len;
  }
  need(2);
  const count = value.readUInt16BE(o);
  o += 2;
  const bins: Bin[] = [];
  for (let i = 0; i < count; i++) {
    need(1);
    const nl = value[o]!;
    need(1 + nl + 5);
    const name = value.toString('utf8', o + 1, o + 1 + nl);
    o += 1 + nl;
    const type = value[o]! as ParticleTypeId;
    const len = value.readUInt32BE(o + 1);
    need(5 + len);
    bins.push({ name, type, bytes: Buffer.from(value.subarray(o + 5, o + 5 + len)) });
    o += 5 + len;
  }
  if (o !== value.length) throw new ShipCodecError(`${value.length - o} trailing bytes`);
  const digest = Buffer.from(key);
  if (userKey && !computeDigest(set, userKey).equals(digest)) throw new ShipCodecError('digest does not match set and user key');
  const v: RecordVersion = { namespace, set, digest, generation, lutMs, voidTimeS, tombstone: (flags & 1) !== 0, bins };
  if (userKey) v.key = userKey;
  if (v.tombstone && (flags & 4) !== 0) v.origin = RecordOrigin.EXPIRED;
  return v;
}
