/**
 * JS values <-> wire values (particle type + bytes), docs section 5.3.
 */
import { ParticleType, type ParticleTypeId, type Value } from '../types.js';
import { AerospikeError } from '../wire/errors.js';
import { packValue, unpackValue, type MsgValue } from './msgpack.js';

import { GeoJSON } from './geojson.js';

export { GeoJSON };

/** A value passed through unchanged: particle type and bytes exactly as given. */
export class RawValue implements Value {
  constructor(
    readonly type: ParticleTypeId,
    readonly bytes: Buffer,
  ) {}
}

export type BinValue = MsgValue | RawValue;

const GEO_HEADER_BYTES = 3;

/** Encodes a JS value for a WRITE op. `null` becomes NULL (deletes the bin). */
export function toWireValue(v: BinValue): Value {
  if (v instanceof RawValue) return { type: v.type, bytes: v.bytes };
  if (v === null || v === undefined) return { type: ParticleType.NULL, bytes: Buffer.alloc(0) };
  if (typeof v === 'boolean') return { type: ParticleType.BOOL, bytes: Buffer.of(v ? 1 : 0) };
  if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64BE(BigInt(v));
    return { type: ParticleType.INTEGER, bytes: b };
  }
  if (typeof v === 'number') {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleBE(v);
    return { type: ParticleType.FLOAT, bytes: b };
  }
  if (typeof v === 'string') return { type: ParticleType.STRING, bytes: Buffer.from(v, 'utf8') };
  if (Buffer.isBuffer(v)) return { type: ParticleType.BLOB, bytes: v };
  if (v instanceof GeoJSON) {
    const text = Buffer.from(v.text, 'utf8');
    const b = Buffer.alloc(GEO_HEADER_BYTES + text.length);
    text.copy(b, GEO_HEADER_BYTES);
    return { type: ParticleType.GEOJSON, bytes: b };
  }
  if (Array.isArray(v)) return { type: ParticleType.LIST, bytes: packValue(v) };
  return { type: ParticleType.MAP, bytes: packValue(v) };
}

/** Decodes a wire value to JS. Integers beyond 2^53 come back as bigint. */
export function fromWireValue(v: Value): BinValue {
  const b = v.bytes;
  switch (v.type) {
    case ParticleType.NULL:
      return null;
    case ParticleType.INTEGER: {
      if (b.length > 8) throw new AerospikeError(-1, 'integer of more than 8 bytes');
      const padded = Buffer.alloc(8, b.length > 0 && b[0]! & 0x80 ? 0xff : 0);
      b.copy(padded, 8 - b.length);
      const n = padded.readBigInt64BE();
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    }
    case ParticleType.FLOAT:
      return b.readDoubleBE(0);
    case ParticleType.STRING:
      return b.toString('utf8');
    case ParticleType.BLOB:
      return Buffer.from(b);
    case ParticleType.BOOL:
      return b[0] !== 0;
    case ParticleType.GEOJSON: {
      if (b.length < GEO_HEADER_BYTES) throw new AerospikeError(-1, 'GeoJSON value truncated');
      const cells = b.readUInt16BE(1);
      return new GeoJSON(b.subarray(GEO_HEADER_BYTES + cells * 8).toString('utf8'));
    }
    case ParticleType.LIST:
    case ParticleType.MAP:
      return unpackValue(b);
    default:
      return new RawValue(v.type, Buffer.from(b));
  }
}
