/**
 * Record digests and partition ids, computed exactly as Aerospike clients compute them:
 * digest = RIPEMD-160(set name bytes || key type byte || key bytes); the namespace is not part
 * of it. Partition = first two digest bytes read little-endian, low 12 bits.
 */
import { createHash } from 'node:crypto';
import { DIGEST_BYTES, ParticleType, type PartitionId, type UserKey } from './types.js';

/** A user key in its JS forms; integers beyond 2^53 must be bigint. */
export type KeyInput = string | number | bigint | Buffer;

/** Encodes a JS key the way clients put it on the wire (particle type + bytes). */
export function userKeyOf(key: KeyInput): UserKey {
  if (typeof key === 'string') return { type: ParticleType.STRING, bytes: Buffer.from(key, 'utf8') };
  if (Buffer.isBuffer(key)) return { type: ParticleType.BLOB, bytes: key };
  const bytes = Buffer.alloc(8);
  if (typeof key === 'number' && !Number.isSafeInteger(key)) {
    throw new RangeError(`integer key ${key} is not a safe integer; pass a bigint`);
  }
  bytes.writeBigInt64BE(BigInt(key));
  return { type: ParticleType.INTEGER, bytes };
}

/** RIPEMD-160 digest of (set, key) as Aerospike clients compute it. */
export function computeDigest(set: string, key: UserKey | KeyInput): Buffer {
  const k = isUserKey(key) ? key : userKeyOf(key);
  const hash = createHash('ripemd160');
  if (set.length > 0) hash.update(set, 'utf8');
  hash.update(Buffer.of(k.type));
  hash.update(k.bytes);
  return hash.digest();
}

/** Partition id of a digest: (d[0] | d[1] << 8) & 0xFFF. */
export function partitionOf(digest: Buffer): PartitionId {
  if (digest.length !== DIGEST_BYTES) throw new RangeError(`digest must be ${DIGEST_BYTES} bytes, got ${digest.length}`);
  return ((digest[0]! | (digest[1]! << 8)) & 0x0fff) as PartitionId;
}

function isUserKey(k: UserKey | KeyInput): k is UserKey {
  return typeof k === 'object' && !Buffer.isBuffer(k) && 'type' in k && 'bytes' in k;
}
