/**
 * msgpack in the Aerospike style (docs section 5.4): strings and blobs are msgpack `str` with a
 * one-byte particle-type prefix (0x03 string, 0x04 blob, 0x17 GeoJSON); ordered lists and maps
 * carry a leading ext element holding flags, which the decoder skips.
 */
import { AerospikeError } from '../wire/errors.js';
import { ParticleType } from '../types.js';
import { GeoJSON } from './geojson.js';

export type MsgValue = null | boolean | number | bigint | string | Buffer | GeoJSON | MsgValue[] | Map<MsgValue, MsgValue> | { [k: string]: MsgValue };

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.len);
    this.len += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.len);
    this.len += 4;
  }
  i64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigInt64BE(v, this.len);
    this.len += 8;
  }
  u64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64BE(v, this.len);
    this.len += 8;
  }
  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.len);
    this.len += 8;
  }
  bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
  }
  result(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

function writeInt(w: Writer, v: bigint): void {
  if (v >= 0n) {
    if (v < 128n) w.u8(Number(v));
    else if (v < 256n) (w.u8(0xcc), w.u8(Number(v)));
    else if (v < 65536n) (w.u8(0xcd), w.u16(Number(v)));
    else if (v < 4294967296n) (w.u8(0xce), w.u32(Number(v)));
    else if (v <= UINT64_MAX) (w.u8(0xcf), w.u64(v));
    else throw new AerospikeError(-2, `integer ${v} out of range`);
  } else {
    if (v >= -32n) w.u8(Number(v) & 0xff);
    else if (v >= -128n) (w.u8(0xd0), w.u8(Number(v) & 0xff));
    else if (v >= -32768n) (w.u8(0xd1), w.u16(Number(v) & 0xffff));
    else if (v >= -2147483648n) (w.u8(0xd2), w.u32(Number(v) >>> 0));
    else if (v >= INT64_MIN) (w.u8(0xd3), w.i64(v));
    else throw new AerospikeError(-2, `integer ${v} out of range`);
  }
}

function writeStrHeader(w: Writer, n: number): void {
  if (n < 32) w.u8(0xa0 | n);
  else if (n < 256) (w.u8(0xd9), w.u8(n));
  else if (n < 65536) (w.u8(0xda), w.u16(n));
  else (w.u8(0xdb), w.u32(n));
}

function writePrefixed(w: Writer, prefix: number, payload: Buffer): void {
  writeStrHeader(w, payload.length + 1);
  w.u8(prefix);
  w.bytes(payload);
}

function writeValue(w: Writer, v: MsgValue): void {
  if (v === null || v === undefined) return w.u8(0xc0);
  if (typeof v === 'boolean') return w.u8(v ? 0xc3 : 0xc2);
  if (typeof v === 'bigint') return writeInt(w, v);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && Number.isSafeInteger(v)) return writeInt(w, BigInt(v));
    w.u8(0xcb);
    return w.f64(v);
  }
  if (typeof v === 'string') return writePrefixed(w, ParticleType.STRING, Buffer.from(v, 'utf8'));
  if (Buffer.isBuffer(v)) return writePrefixed(w, ParticleType.BLOB, v);
  if (v instanceof GeoJSON) return writePrefixed(w, ParticleType.GEOJSON, Buffer.from(v.text, 'utf8'));
  if (Array.isArray(v)) {
    const n = v.length;
    if (n < 16) w.u8(0x90 | n);
    else if (n < 65536) (w.u8(0xdc), w.u16(n));
    else (w.u8(0xdd), w.u32(n));
    for (const x of v) writeValue(w, x);
    return;
  }
  const entries: Array<[MsgValue, MsgValue]> = v instanceof Map ? [...v.entries()] : Object.entries(v);
  const n = entries.length;
  if (n < 16) w.u8(0x80 | n);
  else if (n < 65536) (w.u8(0xde), w.u16(n));
  else (w.u8(0xdf), w.u32(n));
  for (const [k, x] of entries) {
    writeValue(w, k);
    writeValue(w, x);
  }
}

export function packValue(v: MsgValue): Buffer {
  const w = new Writer();
  writeValue(w, v);
  return w.result();
}

class Reader {
  p = 0;
  constructor(readonly b: Buffer) {}
  need(n: number): void {
    if (this.b.length - this.p < n) throw new AerospikeError(-1, 'msgpack value truncated');
  }
}

function readPrefixed(r: Reader, n: number): MsgValue {
  r.need(n);
  const s = r.b.subarray(r.p, r.p + n);
  r.p += n;
  if (n === 0) return Buffer.alloc(0);
  const prefix = s[0]!;
  const payload = s.subarray(1);
  if (prefix === ParticleType.STRING) return payload.toString('utf8');
  if (prefix === ParticleType.GEOJSON) return new GeoJSON(payload.toString('utf8'));
  return Buffer.from(payload);
}

function isExtHead(r: Reader): boolean {
  const t = r.b[r.p];
  return t === 0xc7 || t === 0xd4 || t === 0xd5;
}

function skipExt(r: Reader): void {
  const t = r.b[r.p++]!;
  if (t === 0xc7) {
    r.need(2);
    const n = r.b[r.p]!;
    r.p += 2 + n;
  } else if (t === 0xd4) r.p += 2;
  else r.p += 3;
  if (r.p > r.b.length) throw new AerospikeError(-1, 'msgpack ext truncated');
}

function readValue(r: Reader): MsgValue {
  r.need(1);
  const t = r.b[r.p++]!;
  if (t < 0x80) return t;
  if (t >= 0xe0) return t - 256;
  if ((t & 0xe0) === 0xa0) return readPrefixed(r, t & 0x1f);
  if ((t & 0xf0) === 0x90) return readArray(r, t & 0x0f);
  if ((t & 0xf0) === 0x80) return readMap(r, t & 0x0f);
  const u = (n: number): number => {
    r.need(n);
    const v = r.b.readUIntBE(r.p, n);
    r.p += n;
    return v;
  };
  switch (t) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xcc:
      return u(1);
    case 0xcd:
      return u(2);
    case 0xce:
      return u(4);
    case 0xcf: {
      r.need(8);
      const v = r.b.readBigUInt64BE(r.p);
      r.p += 8;
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case 0xd0:
      r.need(1);
      return r.b.readInt8(r.p++);
    case 0xd1: {
      r.need(2);
      const v = r.b.readInt16BE(r.p);
      r.p += 2;
      return v;
    }
    case 0xd2: {
      r.need(4);
      const v = r.b.readInt32BE(r.p);
      r.p += 4;
      return v;
    }
    case 0xd3: {
      r.need(8);
      const v = r.b.readBigInt64BE(r.p);
      r.p += 8;
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case 0xca: {
      r.need(4);
      const v = r.b.readFloatBE(r.p);
      r.p += 4;
      return v;
    }
    case 0xcb: {
      r.need(8);
      const v = r.b.readDoubleBE(r.p);
      r.p += 8;
      return v;
    }
    case 0xd9:
    case 0xc4:
      return readPrefixed(r, u(1));
    case 0xda:
    case 0xc5:
      return readPrefixed(r, u(2));
    case 0xdb:
    case 0xc6:
      return readPrefixed(r, u(4));
    case 0xdc:
      return readArray(r, u(2));
    case 0xdd:
      return readArray(r, u(4));
    case 0xde:
      return readMap(r, u(2));
    case 0xdf:
      return readMap(r, u(4));
    default:
      throw new AerospikeError(-1, `unsupported msgpack type 0x${t.toString(16)}`);
  }
}

function readArray(r: Reader, n: number): MsgValue[] {
  const out: MsgValue[] = [];
  let i = 0;
  if (n > 0 && isExtHead(r)) {
    skipExt(r);
    i = 1;
  }
  for (; i < n; i++) out.push(readValue(r));
  return out;
}

function readMap(r: Reader, n: number): MsgValue {
  let i = 0;
  if (n > 0 && isExtHead(r)) {
    skipExt(r);
    readValue(r);
    i = 1;
  }
  const entries: Array<[MsgValue, MsgValue]> = [];
  let plain = true;
  for (; i < n; i++) {
    const k = readValue(r);
    const v = readValue(r);
    if (typeof k !== 'string') plain = false;
    entries.push([k, v]);
  }
  if (plain) {
    const o: { [k: string]: MsgValue } = {};
    for (const [k, v] of entries) o[k as string] = v;
    return o;
  }
  return new Map(entries);
}

export function unpackValue(b: Buffer): MsgValue {
  const r = new Reader(b);
  const v = readValue(r);
  if (r.p !== b.length) throw new AerospikeError(-1, `${b.length - r.p} trailing msgpack bytes`);
  return v;
}
