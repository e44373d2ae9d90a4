/**
 * AS_MSG (proto type 3) codec: the 22-byte header, fields and ops, in both directions.
 * Decoding never copies payloads (fields and op values are views into the input buffer).
 */
import { PROTO_HEADER_BYTES, ProtoType, writeProtoHeader } from './proto.js';
import { WireError, WireErrorCode } from './errors.js';

export const MSG_HEADER_BYTES = 22;
const FIELD_HEADER_BYTES = 5;
const OP_HEADER_BYTES = 8;

export const Info1 = {
  READ: 0x01,
  GET_ALL: 0x02,
  SHORT_QUERY: 0x04,
  BATCH: 0x08,
  XDR: 0x10,
  NOBINDATA: 0x20,
  READ_MODE_AP_ALL: 0x40,
  COMPRESS_RESPONSE: 0x80,
} as const;

export const Info2 = {
  WRITE: 0x01,
  DELETE: 0x02,
  GENERATION: 0x04,
  GENERATION_GT: 0x08,
  DURABLE_DELETE: 0x10,
  CREATE_ONLY: 0x20,
  RELAX_AP_LONG_QUERY: 0x40,
  RESPOND_ALL_OPS: 0x80,
} as const;

export const Info3 = {
  LAST: 0x01,
  COMMIT_MASTER: 0x02,
  PARTITION_DONE: 0x04,
  UPDATE_ONLY: 0x08,
  CREATE_OR_REPLACE: 0x10,
  REPLACE_ONLY: 0x20,
  SC_READ_TYPE: 0x40,
  SC_READ_RELAX: 0x80,
} as const;

export const FieldType = {
  NAMESPACE: 0,
  SET: 1,
  KEY: 2,
  RECORD_VERSION: 3,
  DIGEST: 4,
  TXN_ID: 5,
  TXN_DEADLINE: 6,
  TASK_ID: 7,
  SOCKET_TIMEOUT: 9,
  RPS: 10,
  PID_ARRAY: 11,
  DIGEST_ARRAY: 12,
  MAX_RECORDS: 13,
  LUT: 14,
  BVAL_ARRAY: 15,
  INDEX_NAME: 21,
  INDEX_RANGE: 22,
  INDEX_CONTEXT: 23,
  INDEX_EXPRESSION: 24,
  INDEX_TYPE: 26,
  UDF_PACKAGE_NAME: 30,
  UDF_FUNCTION: 31,
  UDF_ARGLIST: 32,
  UDF_OP: 33,
  QUERY_BINS: 40,
  BATCH_INDEX: 41,
  BATCH_INDEX_WITH_SET: 42,
  FILTER: 43,
  /** ferry extension: replicated write (docs/wire-extensions.md). */
  FERRY_REPLICATED: 250,
} as const;

/** Field ids this implementation knows (anything else in a request is a PARAMETER error). */
export const KNOWN_FIELD_TYPES: ReadonlySet<number> = new Set(Object.values(FieldType));

export interface Field {
  type: number;
  data: Buffer;
}

export interface WireOp {
  op: number;
  particleType: number;
  /** Op flags byte (clients send 0). */
  flags: number;
  /** Bin name bytes; may exceed 15 bytes in a bad request (the server answers BIN_NAME). */
  name: Buffer;
  value: Buffer;
}

export interface MsgHeader {
  info1: number;
  info2: number;
  info3: number;
  info4: number;
  resultCode: number;
  generation: number;
  /** u32 as on the wire (0xFFFFFFFF stays 4294967295). */
  recordTtl: number;
  transactionTtl: number;
}

export interface AsMsg extends MsgHeader {
  fields: Field[];
  ops: WireOp[];
}

export const emptyHeader = (): MsgHeader => ({
  info1: 0,
  info2: 0,
  info3: 0,
  info4: 0,
  resultCode: 0,
  generation: 0,
  recordTtl: 0,
  transactionTtl: 0,
});

/** Decodes one AS_MSG at `offset`; returns it and the offset just past it. */
export function decodeMsgAt(buf: Buffer, offset: number): { msg: AsMsg; end: number } {
  if (buf.length - offset < MSG_HEADER_BYTES) throw new WireError(WireErrorCode.TRUNCATED, 'AS_MSG header');
  const headerSize = buf[offset]!;
  if (headerSize !== MSG_HEADER_BYTES) throw new WireError(WireErrorCode.BAD_HEADER, `header_sz ${headerSize}`);
  const msg: AsMsg = {
    info1: buf[offset + 1]!,
    info2: buf[offset + 2]!,
    info3: buf[offset + 3]!,
    info4: buf[offset + 4]!,
    resultCode: buf[offset + 5]!,
    generation: buf.readUInt32BE(offset + 6),
    recordTtl: buf.readUInt32BE(offset + 10),
    transactionTtl: buf.readUInt32BE(offset + 14),
    fields: [],
    ops: [],
  };
  const nFields = buf.readUInt16BE(offset + 18);
  const nOps = buf.readUInt16BE(offset + 20);
  let p = offset + MSG_HEADER_BYTES;
  for (let i = 0; i < nFields; i++) {
    if (buf.length - p < FIELD_HEADER_BYTES) throw new WireError(WireErrorCode.TRUNCATED, `field ${i} header`);
    const size = buf.readUInt32BE(p);
    if (size < 1) throw new WireError(WireErrorCode.BAD_FIELD, `field ${i} size 0`);
    if (buf.length - p - 4 < size) throw new WireError(WireErrorCode.TRUNCATED, `field ${i} of ${size} bytes`);
    msg.fields.push({ type: buf[p + 4]!, data: buf.subarray(p + 5, p + 4 + size) });
    p += 4 + size;
  }
  for (let i = 0; i < nOps; i++) {
    if (buf.length - p < OP_HEADER_BYTES) throw new WireError(WireErrorCode.TRUNCATED, `op ${i} header`);
    const size = buf.readUInt32BE(p);
    const nameLen = buf[p + 7]!;
    if (size < 4 + nameLen) throw new WireError(WireErrorCode.BAD_OP, `op ${i} size ${size} < 4 + name ${nameLen}`);
    if (buf.length - p - 4 < size) throw new WireError(WireErrorCode.TRUNCATED, `op ${i} of ${size} bytes`);
    msg.ops.push({
      op: buf[p + 4]!,
      particleType: buf[p + 5]!,
      flags: buf[p + 6]!,
      name: buf.subarray(p + 8, p + 8 + nameLen),
      value: buf.subarray(p + 8 + nameLen, p + 4 + size),
    });
    p += 4 + size;
  }
  return { msg, end: p };
}

/** Decodes a body holding exactly one AS_MSG (single-record requests and responses). */
export function decodeMsg(body: Buffer): AsMsg {
  const { msg, end } = decodeMsgAt(body, 0);
  if (end !== body.length) throw new WireError(WireErrorCode.BAD_HEADER, `${body.length - end} trailing bytes`);
  return msg;
}

/** Decodes a body holding several AS_MSGs back to back (batch and scan responses). */
export function decodeMsgs(body: Buffer): AsMsg[] {
  const out: AsMsg[] = [];
  let p = 0;
  while (p < body.length) {
    const { msg, end } = decodeMsgAt(body, p);
    out.push(msg);
    p = end;
  }
  return out;
}

/** Encoded size of an AS_MSG (without proto header). */
export function msgBytes(fields: readonly Field[], ops: readonly WireOp[]): number {
  let n = MSG_HEADER_BYTES;
  for (const f of fields) n += FIELD_HEADER_BYTES + f.data.length;
  for (const o of ops) n += OP_HEADER_BYTES + o.name.length + o.value.length;
  return n;
}

/** Writes an AS_MSG at `offset`; returns the offset past it. `buf` must have room (msgBytes). */
export function writeMsg(buf: Buffer, offset: number, h: MsgHeader, fields: readonly Field[], ops: readonly WireOp[]): number {
  if (fields.length > 0xffff || ops.length > 0xffff) throw new WireError(WireErrorCode.BAD_HEADER, 'more than 65535 fields or ops');
  buf[offset] = MSG_HEADER_BYTES;
  buf[offset + 1] = h.info1;
  buf[offset + 2] = h.info2;
  buf[offset + 3] = h.info3;
  buf[offset + 4] = h.info4;
  buf[offset + 5] = h.resultCode;
  buf.writeUInt32BE(h.generation >>> 0, offset + 6);
  buf.writeUInt32BE(h.recordTtl >>> 0, offset + 10);
  buf.writeUInt32BE(h.transactionTtl >>> 0, offset + 14);
  buf.writeUInt16BE(fields.length, offset + 18);
  buf.writeUInt16BE(ops.length, offset + 20);
  let p = offset + MSG_HEADER_BYTES;
  for (const f of fields) {
    buf.writeUInt32BE(f.data.length + 1, p);
    buf[p + 4] = f.type;
    f.data.copy(buf, p + 5);
    p += FIELD_HEADER_BYTES + f.data.length;
  }
  for (const o of ops) {
    if (o.name.length > 0xff) throw new WireError(WireErrorCode.BAD_OP, `bin name of ${o.name.length} bytes`);
    buf.writeUInt32BE(4 + o.name.length + o.value.length, p);
    buf[p + 4] = o.op;
    buf[p + 5] = o.particleType;
    buf[p + 6] = o.flags;
    buf[p + 7] = o.name.length;
    o.name.copy(buf, p + 8);
    o.value.copy(buf, p + 8 + o.name.length);
    p += OP_HEADER_BYTES + o.name.length + o.value.length;
  }
  return p;
}

/** Encodes one AS_MSG body (no proto header). */
export function encodeMsg(h: MsgHeader, fields: readonly Field[] = [], ops: readonly WireOp[] = []): Buffer {
  const out = Buffer.allocUnsafe(msgBytes(fields, ops));
  writeMsg(out, 0, h, fields, ops);
  return out;
}

/** Encodes one AS_MSG as a complete type-3 proto message. */
export function encodeMsgFrame(h: MsgHeader, fields: readonly Field[] = [], ops: readonly WireOp[] = []): Buffer {
  const size = msgBytes(fields, ops);
  const out = Buffer.allocUnsafe(PROTO_HEADER_BYTES + size);
  writeProtoHeader(out, 0, ProtoType.AS_MSG, size);
  writeMsg(out, PROTO_HEADER_BYTES, h, fields, ops);
  return out;
}

/** A header-only message (results of writes, errors, LAST markers). */
export function encodeHeaderFrame(h: Partial<MsgHeader>): Buffer {
  return encodeMsgFrame({ ...emptyHeader(), ...h });
}

/** First field of `type`, if any. */
export function findField(fields: readonly Field[], type: number): Field | undefined {
  for (const f of fields) if (f.type === type) return f;
  return undefined;
}

export const field = (type: number, data: Buffer | string): Field => ({
  type,
  data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data,
});

export const op = (opType: number, name: string | Buffer, particleType = 0, value: Buffer = EMPTY, flags = 0): WireOp => ({
  op: opType,
  particleType,
  flags,
  name: typeof name === 'string' ? Buffer.from(name, 'utf8') : name,
  value,
});

export const EMPTY = Buffer.alloc(0);

/**
 * Accumulates AS_MSGs into type-3 proto messages of at most `blockBytes` each (multi-record
 * responses: batch, scan). `take()` returns the finished proto messages.
 */
export class MsgBlockWriter {
  private parts: Buffer[] = [];
  private size = 0;
  private done: Buffer[] = [];
  constructor(private readonly blockBytes = 128 * 1024) {}

  add(h: MsgHeader, fields: readonly Field[] = [], ops: readonly WireOp[] = []): void {
    const n = msgBytes(fields, ops);
    if (this.size > 0 && this.size + n > this.blockBytes) this.flush();
    const b = Buffer.allocUnsafe(n);
    writeMsg(b, 0, h, fields, ops);
    this.parts.push(b);
    this.size += n;
  }

  /** Bytes waiting in the current (unfinished) block. */
  get pendingBytes(): number {
    return this.size;
  }

  flush(): void {
    if (this.parts.length === 0) return;
    const head = Buffer.allocUnsafe(PROTO_HEADER_BYTES);
    writeProtoHeader(head, 0, ProtoType.AS_MSG, this.size);
    this.done.push(Buffer.concat([head, ...this.parts], PROTO_HEADER_BYTES + this.size));
    this.parts = [];
    this.size = 0;
  }

  /** Finished proto messages since the last take (call flush first to include the open block). */
  take(): Buffer[] {
    const d = this.done;
    this.done = [];
    return d;
  }
}
