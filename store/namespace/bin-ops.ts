/**
 * Scalar bin operations on wire-typed values (pure). Integers are 8-byte big-endian two's
 * complement, floats 8-byte big-endian IEEE doubles, as on the wire.
 */
import { BIN_NAME_BYTES_MAX, OpType, ParticleType, ResultCode, type Bin, type Op, type ResultCodeId, type Value } from '../types.js';

export const NULL_VALUE: Value = { type: ParticleType.NULL, bytes: Buffer.alloc(0) };

/** A failed op: its result code and a reason for logs. */
export class OpFailure {
  constructor(
    readonly resultCode: ResultCodeId,
    readonly reason: string,
  ) {}
}

export function binNameError(name: string): string | undefined {
  const n = Buffer.byteLength(name);
  if (n > BIN_NAME_BYTES_MAX) return `bin name "${name}" is ${n} bytes; at most ${BIN_NAME_BYTES_MAX}`;
  return undefined;
}

function readInt(v: Value): bigint {
  if (v.bytes.length === 8) return v.bytes.readBigInt64BE(0);
  // Clients may send 0..8 bytes; sign-extend.
  let x = 0n;
  for (const b of v.bytes) x = (x << 8n) | BigInt(b);
  const bits = BigInt(v.bytes.length * 8);
  if (bits > 0n && x >= 1n << (bits - 1n)) x -= 1n << bits;
  return x;
}

function intValue(x: bigint): Value {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt.asIntN(64, x));
  return { type: ParticleType.INTEGER, bytes: b };
}

function floatValue(x: number): Value {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return { type: ParticleType.FLOAT, bytes: b };
}

/** Applies one write-type op to `bins` (mutated). Returns the op's result value (NULL for writes). */
export function applyWriteOp(bins: Map<string, Value>, op: Op): Value | OpFailure {
  const cur = bins.get(op.bin);
  switch (op.op) {
    case OpType.WRITE:
      if (op.value.type === ParticleType.NULL) bins.delete(op.bin);
      else bins.set(op.bin, op.value);
      return NULL_VALUE;
    case OpType.INCR: {
      const v = op.value;
      if (v.type !== ParticleType.INTEGER && v.type !== ParticleType.FLOAT) {
        return new OpFailure(ResultCode.PARAMETER, `increment by a value of particle type ${v.type}`);
      }
      if (!cur) {
        bins.set(op.bin, v.type === ParticleType.INTEGER ? intValue(readInt(v)) : v);
        return NULL_VALUE;
      }
      if (cur.type === ParticleType.INTEGER && v.type === ParticleType.INTEGER) {
        bins.set(op.bin, intValue(readInt(cur) + readInt(v)));
      } else if (cur.type === ParticleType.FLOAT && v.type === ParticleType.FLOAT) {
        bins.set(op.bin, floatValue(cur.bytes.readDoubleBE(0) + v.bytes.readDoubleBE(0)));
      } else {
        return new OpFailure(ResultCode.INCOMPATIBLE_TYPE, `cannot increment bin "${op.bin}" of type ${cur.type} by type ${v.type}`);
      }
      return NULL_VALUE;
    }
    case OpType.APPEND:
    case OpType.PREPEND: {
      const v = op.value;
      if (v.type !== ParticleType.STRING && v.type !== ParticleType.BLOB) {
        return new OpFailure(ResultCode.PARAMETER, `append/prepend of particle type ${v.type}`);
      }
      if (!cur) {
        bins.set(op.bin, v);
        return NULL_VALUE;
      }
      if (cur.type !== v.type) {
        return new OpFailure(ResultCode.INCOMPATIBLE_TYPE, `cannot append type ${v.type} to bin "${op.bin}" of type ${cur.type}`);
      }
      const bytes = op.op === OpType.APPEND ? Buffer.concat([cur.bytes, v.bytes]) : Buffer.concat([v.bytes, cur.bytes]);
      bins.set(op.bin, { type: cur.type, bytes });
      return NULL_VALUE;
    }
    default:
      return new OpFailure(ResultCode.UNSUPPORTED_FEATURE, `operation type ${op.op} is not supported`);
  }
}

export function binsToMap(bins: readonly Bin[]): Map<string, Value> {
  const m = new Map<string, Value>();
  for (const b of bins) m.set(b.name, { type: b.type, bytes: b.bytes });
  return m;
}

export function mapToBins(m: Map<string, Value>): Bin[] {
  const out: Bin[] = [];
  for (const [name, v] of m) out.push({ name, type: v.type, bytes: v.bytes });
  return out;
}

export function isWriteOp(op: number): boolean {
  return (
    op === OpType.WRITE ||
    op === OpType.INCR ||
    op === OpType.APPEND ||
    op === OpType.PREPEND ||
    op === OpType.TOUCH ||
    op === OpType.DELETE ||
    op === OpType.CDT_MODIFY ||
    op === OpType.BIT_MODIFY ||
    op === OpType.HLL_MODIFY ||
    op === OpType.EXP_MODIFY
  );
}
