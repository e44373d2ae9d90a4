/**
 * Primitive readers and writers of the Kafka wire protocol (big-endian, int16-length strings,
 * int32-count arrays, zigzag varints for record batches). Pure: no I/O.
 */
import { DecodeError, DecodeErrorCode } from './errors.js';

/** Largest array count accepted from a request (guards allocation on garbage). */
export const arrayCountMax = 1_000_000;

export class Reader {
  offset: number;
  constructor(readonly buf: Buffer, offset = 0) {
    this.offset = offset;
  }
  get remaining(): number {
    return this.buf.length - this.offset;
  }
  private need(n: number): number {
    if (this.offset + n > this.buf.length) {
      throw new DecodeError(DecodeErrorCode.TRUNCATED, `need ${n} bytes at ${this.offset}, have ${this.remaining}`);
    }
    const at = this.offset;
    this.offset += n;
    return at;
  }
  int8(): number {
    return this.buf.readInt8(this.need(1));
  }
  bool(): boolean {
    return this.int8() !== 0;
  }
  int16(): number {
    return this.buf.readInt16BE(this.need(2));
  }
  int32(): number {
    return this.buf.readInt32BE(this.need(4));
  }
  uint32(): number {
    return this.buf.readUInt32BE(this.need(4));
  }
  int64(): bigint {
    return this.buf.readBigInt64BE(this.need(8));
  }
  /** int64 as a JS number (offsets and timestamps stay far below 2^53). */
  int64n(): number {
    return Number(this.int64());
  }
  nullableString(): string | null {
    const len = this.int16();
    if (len === -1) return null;
    if (len < 0) throw new DecodeError(DecodeErrorCode.BAD_LENGTH, `string length ${len}`);
    const at = this.need(len);
    return this.buf.toString('utf8', at, at + len);
  }
  string(): string {
    return this.nullableString() ?? '';
  }
  nullableBytes(): Buffer | null {
    const len = this.int32();
    if (len === -1) return null;
    if (len < 0) throw new DecodeError(DecodeErrorCode.BAD_LENGTH, `bytes length ${len}`);
    const at = this.need(len);
    return this.buf.subarray(at, at + len);
  }
  bytes(): Buffer {
    return this.nullableBytes() ?? Buffer.alloc(0);
  }
  /** ARRAY: null (-1) → null. */
  nullableArray<T>(item: (r: Reader) => T): T[] | null {
    const n = this.int32();
    if (n === -1) return null;
    if (n < 0 || n > arrayCountMax || n > this.remaining) {
      throw new DecodeError(DecodeErrorCode.BAD_LENGTH, `array count ${n}`);
    }
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(item(this));
    return out;
  }
  array<T>(item: (r: Reader) => T): T[] {
    return this.nullableArray(item) ?? [];
  }
  unsignedVarint(): number {
    let value = 0;
    let shift = 0;
    for (;;) {
      const b = this.buf[this.need(1)]!;
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
      shift += 7;
      if (shift > 63) throw new DecodeError(DecodeErrorCode.BAD_LENGTH, 'varint too long');
    }
  }
  /** Zigzag VARINT / VARLONG (as a number; record fields fit). */
  varint(): number {
    const u = this.unsignedVarint();
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }
  /** Skips a tag buffer (flexible versions). */
  skipTags(): void {
    const n = this.unsignedVarint();
    for (let i = 0; i < n; i++) {
      this.unsignedVarint();
      this.need(this.unsignedVarint());
    }
  }
  raw(n: number): Buffer {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }
}

/** Growable writer; large blobs are kept as separate chunks to avoid copies. */
export class Writer {
  private cur: Buffer;
  private pos = 0;
  private readonly chunks: Buffer[] = [];
  private total = 0;
  constructor(initial = 256) {
    this.cur = Buffer.allocUnsafe(initial);
  }
  private room(n: number): number {
    if (this.pos + n > this.cur.length) {
      const next = Buffer.allocUnsafe(Math.max(this.cur.length * 2, this.pos + n));
      this.cur.copy(next, 0, 0, this.pos);
      this.cur = next;
    }
    const at = this.pos;
    this.pos += n;
    this.total += n;
    return at;
  }
  get length(): number {
    return this.total;
  }
  int8(v: number): this {
    const at = this.room(1);
    this.cur.writeInt8(v, at);
    return this;
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  int16(v: number): this {
    const at = this.room(2);
    this.cur.writeInt16BE(v, at);
    return this;
  }
  int32(v: number): this {
    const at = this.room(4);
    this.cur.writeInt32BE(v, at);
    return this;
  }
  uint32(v: number): this {
    const at = this.room(4);
    this.cur.writeUInt32BE(v >>> 0, at);
    return this;
  }
  int64(v: number | bigint): this {
    const at = this.room(8);
    this.cur.writeBigInt64BE(BigInt(v), at);
    return this;
  }
  nullableString(s: string | null): this {
    if (s === null) return this.int16(-1);
    const len = Buffer.byteLength(s);
    this.int16(len);
    const at = this.room(len);
    this.cur.write(s, at, 'utf8');
    return this;
  }
  string(s: string): this {
    return this.nullableString(s);
  }
  nullableBytes(b: Buffer | null): this {
    if (b === null) return this.int32(-1);
    this.int32(b.length);
    return this.raw(b);
  }
  bytes(b: Buffer): this {
    return this.nullableBytes(b);
  }
  array<T>(items: readonly T[] | null, write: (w: Writer, item: T) => void): this {
    if (items === null) return this.int32(-1);
    this.int32(items.length);
    for (const it of items) write(this, it);
    return this;
  }
  unsignedVarint(v: number): this {
    while (v >= 0x80) {
      const at = this.room(1);
      this.cur[at] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    const at = this.room(1);
    this.cur[at] = v;
    return this;
  }
  varint(v: number): this {
    return this.unsignedVarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }
  /** Appends bytes; blobs over 4 KiB become their own chunk (no copy). */
  raw(b: Buffer): this {
    if (b.length <= 4096) {
      const at = this.room(b.length);
      b.copy(this.cur, at);
      return this;
    }
    this.flushCur();
    this.chunks.push(b);
    this.total += b.length;
    return this;
  }
  private flushCur(): void {
    if (this.pos > 0) {
      this.chunks.push(this.cur.subarray(0, this.pos));
      this.cur = Buffer.allocUnsafe(256);
      this.pos = 0;
    }
  }
  toChunks(): Buffer[] {
    this.flushCur();
    return this.chunks;
  }
  toBuffer(): Buffer {
    const chunks = this.toChunks();
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.total);
  }
}
