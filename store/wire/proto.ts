/**
 * The 8-byte proto header and an incremental frame parser. Pure: no sockets.
 *   byte 0 version (2), byte 1 type, bytes 2..7 body size (48-bit BE).
 * Type 4 (compressed AS_MSG) body: u64 BE size of the whole inner message (header included),
 * then a zlib stream of that inner type-3 message.
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { WireError, WireErrorCode } from './errors.js';

export const PROTO_VERSION = 2;
export const PROTO_HEADER_BYTES = 8;
/** Largest body any Aerospike client accepts (PROTO_SIZE_MAX). */
export const PROTO_BODY_BYTES_MAX = 128 * 1024 * 1024;

export const ProtoType = {
  INFO: 1,
  ADMIN: 2,
  AS_MSG: 3,
  AS_MSG_COMPRESSED: 4,
} as const;
export type ProtoTypeId = (typeof ProtoType)[keyof typeof ProtoType];

export interface ProtoHeader {
  version: number;
  type: number;
  size: number;
}

/** Writes a proto header into `buf` at `offset`. */
export function writeProtoHeader(buf: Buffer, offset: number, type: number, size: number): void {
  if (size < 0 || size > PROTO_BODY_BYTES_MAX) throw new WireError(WireErrorCode.TOO_LARGE, `body of ${size} bytes`);
  buf[offset] = PROTO_VERSION;
  buf[offset + 1] = type;
  buf.writeUIntBE(size, offset + 2, 6);
}

export function encodeProtoHeader(type: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(PROTO_HEADER_BYTES);
  writeProtoHeader(b, 0, type, size);
  return b;
}

/** Reads and validates a proto header (version 2, size within `bodyBytesMax`). */
export function readProtoHeader(buf: Buffer, offset = 0, bodyBytesMax = PROTO_BODY_BYTES_MAX): ProtoHeader {
  if (buf.length - offset < PROTO_HEADER_BYTES) throw new WireError(WireErrorCode.TRUNCATED, 'proto header');
  const version = buf[offset]!;
  const type = buf[offset + 1]!;
  const size = buf.readUIntBE(offset + 2, 6);
  if (version !== PROTO_VERSION) throw new WireError(WireErrorCode.BAD_VERSION, `proto version ${version}`);
  if (size > bodyBytesMax) throw new WireError(WireErrorCode.TOO_LARGE, `body of ${size} bytes > ${bodyBytesMax}`);
  return { version, type, size };
}

/** A whole message: header + body. */
export function encodeFrame(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(PROTO_HEADER_BYTES + body.length);
  writeProtoHeader(out, 0, type, body.length);
  body.copy(out, PROTO_HEADER_BYTES);
  return out;
}

export interface Frame {
  type: number;
  body: Buffer;
}

/**
 * Splits a byte stream into frames. Feed chunks with `push`; it returns the complete frames.
 * Throws WireError on a bad header; after that the stream is unusable (close the connection).
 */
export class FrameParser {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private header: ProtoHeader | undefined;
  private failed: WireError | undefined;

  constructor(private readonly bodyBytesMax = PROTO_BODY_BYTES_MAX) {}

  /** Bytes held that do not yet make a complete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    for (;;) {
      if (!this.header) {
        if (this.buffered < PROTO_HEADER_BYTES) break;
        const head = this.take(PROTO_HEADER_BYTES);
        try {
          this.header = readProtoHeader(head, 0, this.bodyBytesMax);
        } catch (err) {
          this.failed = err as WireError;
          throw err;
        }
      }
      if (this.buffered < this.header.size) break;
      const body = this.take(this.header.size);
      frames.push({ type: this.header.type, body });
      this.header = undefined;
    }
    return frames;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, k);
      filled += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}

/** Builds a type-4 message around a complete type-3 message (header included). */
export function compressMessage(inner: Buffer): Buffer {
  const z = deflateSync(inner, { level: 1 });
  const out = Buffer.allocUnsafe(PROTO_HEADER_BYTES + 8 + z.length);
  writeProtoHeader(out, 0, ProtoType.AS_MSG_COMPRESSED, 8 + z.length);
  out.writeBigUInt64BE(BigInt(inner.length), PROTO_HEADER_BYTES);
  z.copy(out, PROTO_HEADER_BYTES + 8);
  return out;
}

/**
 * Inflates a type-4 body; returns the inner AS_MSG body (without its proto header). Checks the
 * inner header is version 2, type 3, and that the sizes agree.
 */
export function decompressBody(body: Buffer, bodyBytesMax = PROTO_BODY_BYTES_MAX): Buffer {
  if (body.length < 8) throw new WireError(WireErrorCode.TRUNCATED, 'compressed body shorter than 8 bytes');
  const declared = body.readBigUInt64BE(0);
  if (declared < BigInt(PROTO_HEADER_BYTES) || declared > BigInt(bodyBytesMax + PROTO_HEADER_BYTES)) {
    throw new WireError(WireErrorCode.BAD_COMPRESSION, `declared uncompressed size ${declared}`);
  }
  let inner: Buffer;
  try {
    inner = inflateSync(body.subarray(8), { maxOutputLength: Number(declared) });
  } catch (err) {
    throw new WireError(WireErrorCode.BAD_COMPRESSION, `inflate failed: ${(err as Error).message}`);
  }
  if (inner.length !== Number(declared)) {
    throw new WireError(WireErrorCode.BAD_COMPRESSION, `inflated ${inner.length} bytes, declared ${declared}`);
  }
  const h = readProtoHeader(inner, 0, bodyBytesMax);
  if (h.type !== ProtoType.AS_MSG) throw new WireError(WireErrorCode.BAD_COMPRESSION, `inner type ${h.type}`);
  if (h.size + PROTO_HEADER_BYTES !== inner.length) {
    throw new WireError(WireErrorCode.BAD_COMPRESSION, `inner size ${h.size} does not match ${inner.length - 8}`);
  }
  return inner.subarray(PROTO_HEADER_BYTES);
}
