/**
 * ferry's replicated-write extension field (250), docs/wire-extensions.md:
 *   u8 format=1, u8 policy (0 generation, 1 last-update-time), u8 flags (bit 0 tombstone,
 *   bit 1 the tombstone was left by expiry or eviction at the source),
 *   u32 generation BE, u64 lut_ms BE, u32 void_time_s BE.
 */
import { ConflictPolicy, type ConflictPolicyId } from '../types.js';
import { WireError, WireErrorCode } from './errors.js';

export const REPLICATED_FORMAT = 1;
export const REPLICATED_FIELD_BYTES = 19;
const TOMBSTONE_FLAG = 0x01;
const EXPIRED_FLAG = 0x02;

export interface ReplicatedMeta {
  policy: ConflictPolicyId;
  tombstone: boolean;
  generation: number;
  lutMs: number;
  voidTimeS: number;
  /** The tombstone was left by expiry or eviction (absent = false). */
  expired?: boolean;
}

export function encodeReplicatedField(m: ReplicatedMeta): Buffer {
  const b = Buffer.allocUnsafe(REPLICATED_FIELD_BYTES);
  b[0] = REPLICATED_FORMAT;
  b[1] = m.policy === ConflictPolicy.LAST_UPDATE_TIME ? 1 : 0;
  b[2] = (m.tombstone ? TOMBSTONE_FLAG : 0) | (m.tombstone && m.expired ? EXPIRED_FLAG : 0);
  b.writeUInt32BE(m.generation >>> 0, 3);
  b.writeBigUInt64BE(BigInt(m.lutMs), 7);
  b.writeUInt32BE(m.voidTimeS >>> 0, 15);
  return b;
}

export function decodeReplicatedField(data: Buffer): ReplicatedMeta {
  if (data.length !== REPLICATED_FIELD_BYTES) {
    throw new WireError(WireErrorCode.BAD_REPLICATED, `field 250 of ${data.length} bytes, expected ${REPLICATED_FIELD_BYTES}`);
  }
  if (data[0] !== REPLICATED_FORMAT) throw new WireError(WireErrorCode.BAD_REPLICATED, `format ${data[0]}`);
  const policyByte = data[1]!;
  if (policyByte > 1) throw new WireError(WireErrorCode.BAD_REPLICATED, `policy ${policyByte}`);
  const lut = data.readBigUInt64BE(7);
  if (lut > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError(WireErrorCode.BAD_REPLICATED, `lut ${lut}`);
  const m: ReplicatedMeta = {
    policy: policyByte === 1 ? ConflictPolicy.LAST_UPDATE_TIME : ConflictPolicy.GENERATION,
    tombstone: (data[2]! & TOMBSTONE_FLAG) !== 0,
    generation: data.readUInt32BE(3),
    lutMs: Number(lut),
    voidTimeS: data.readUInt32BE(15),
  };
  if (m.tombstone && (data[2]! & EXPIRED_FLAG) !== 0) m.expired = true;
  return m;
}
