/**
 * Batch-index field (41) codec, as the C client 7.x writes it for servers >= 6.0:
 *   u32 count, u8 flags, then rows:
 *   u32 index, 20-byte digest, u8 type; unless REPEAT: info1, [info2, info3 if HAS_INFO],
 *   [info4 if HAS_INFO4], [u16 generation if HAS_GEN], [u32 ttl if HAS_TTL], u16 n_fields,
 *   u16 n_ops, fields, ops. Type 0 is the older form (info1, n_fields, n_ops only).
 * A REPEAT row reuses the previous full row's attributes, fields and ops.
 */
import { DIGEST_BYTES } from '../types.js';
import { WireError, WireErrorCode } from './errors.js';
import { FieldType, type Field, type WireOp } from './message.js';

export const BatchFlag = {
  ALLOW_INLINE: 0x01,
  ALLOW_INLINE_SSD: 0x02,
  RESPOND_ALL_KEYS: 0x04,
  /** Set by the current protocol (server: REPORT_ERROR_REC). */
  NEW_PROTOCOL: 0x08,
} as const;

export const BatchRowType = {
  REPEAT: 0x01,
  HAS_INFO: 0x02,
  HAS_GEN: 0x04,
  HAS_TTL: 0x08,
  HAS_INFO4: 0x10,
} as const;

/** Most rows one batch request may carry. */
export const BATCH_ROWS_MAX = 1_000_000;

export interface BatchRow {
  /** The client's position for this key, echoed in the response's transaction_ttl. */
  index: number;
  digest: Buffer;
  /** True when the row reused the previous row's attributes. */
  repeat: boolean;
  info1: number;
  info2: number;
  info3: number;
  info4: number;
  generation: number;
  recordTtl: number;
  /** First is NAMESPACE. */
  fields: Field[];
  ops: WireOp[];
}

export interface BatchRequest {
  flags: number;
  rows: BatchRow[];
}

export function decodeBatchField(data: Buffer): BatchRequest {
  if (data.length < 5) throw new WireError(WireErrorCode.BAD_BATCH, 'batch field shorter than 5 bytes');
  const count = data.readUInt32BE(0);
  const flags = data[4]!;
  if (count > BATCH_ROWS_MAX) throw new WireError(WireErrorCode.BAD_BATCH, `${count} rows`);
  const rows: BatchRow[] = [];
  let p = 5;
  let prev: BatchRow | undefined;
  const need = (n: number, what: string): void => {
    if (data.length - p < n) throw new WireError(WireErrorCode.TRUNCATED, `batch row ${rows.length}: ${what}`);
  };
  for (let i = 0; i < count; i++) {
    need(4 + DIGEST_BYTES + 1, 'index, digest, type');
    const index = data.readUInt32BE(p);
    const digest = data.subarray(p + 4, p + 4 + DIGEST_BYTES);
    const type = data[p + 4 + DIGEST_BYTES]!;
    p += 4 + DIGEST_BYTES + 1;
    if (type & BatchRowType.REPEAT) {
      if (!prev) throw new WireError(WireErrorCode.BAD_BATCH, 'REPEAT on the first row');
      const row: BatchRow = { ...prev, index, digest, repeat: true };
      rows.push(row);
      continue;
    }
    need(1, 'info1');
    const info1 = data[p++]!;
    let info2 = 0;
    let info3 = 0;
    let info4 = 0;
    let generation = 0;
    let recordTtl = 0;
    if (type & BatchRowType.HAS_INFO) {
      need(2, 'info2, info3');
      info2 = data[p]!;
      info3 = data[p + 1]!;
      p += 2;
    }
    if (type & BatchRowType.HAS_INFO4) {
      need(1, 'info4');
      info4 = data[p++]!;
    }
    if (type & BatchRowType.HAS_GEN) {
      need(2, 'generation');
      generation = data.readUInt16BE(p);
      p += 2;
    }
    if (type & BatchRowType.HAS_TTL) {
      need(4, 'ttl');
      recordTtl = data.readUInt32BE(p);
      p += 4;
    }
    need(4, 'n_fields, n_ops');
    const nFields = data.readUInt16BE(p);
    const nOps = data.readUInt16BE(p + 2);
    p += 4;
    const fields: Field[] = [];
    for (let f = 0; f < nFields; f++) {
      need(5, `field ${f}`);
      const size = data.readUInt32BE(p);
      if (size < 1) throw new WireError(WireErrorCode.BAD_FIELD, `batch row ${rows.length} field ${f} size 0`);
      need(4 + size, `field ${f} data`);
      fields.push({ type: data[p + 4]!, data: data.subarray(p + 5, p + 4 + size) });
      p += 4 + size;
    }
    if (fields.length === 0 || fields[0]!.type !== FieldType.NAMESPACE) {
      throw new WireError(WireErrorCode.BAD_BATCH, `batch row ${rows.length}: first field is not NAMESPACE`);
    }
    const ops: WireOp[] = [];
    for (let o = 0; o < nOps; o++) {
      need(8, `op ${o}`);
      const size = data.readUInt32BE(p);
      const nameLen = data[p + 7]!;
      if (size < 4 + nameLen) throw new WireError(WireErrorCode.BAD_OP, `batch row ${rows.length} op ${o} size ${size}`);
      need(4 + size, `op ${o} data`);
      ops.push({
        op: data[p + 4]!,
        particleType: data[p + 5]!,
        flags: data[p + 6]!,
        name: data.subarray(p + 8, p + 8 + nameLen),
        value: data.subarray(p + 8 + nameLen, p + 4 + size),
      });
      p += 4 + size;
    }
    const row: BatchRow = { index, digest, repeat: false, info1, info2, info3, info4, generation, recordTtl, fields, ops };
    rows.push(row);
    prev = row;
  }
  if (p !== data.length) throw new WireError(WireErrorCode.BAD_BATCH, `${data.length - p} trailing bytes`);
  return { flags, rows };
}

/** Encodes field 41's payload. Rows marked `repeat` are written as REPEAT rows. */
export function encodeBatchField(req: BatchRequest): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(req.rows.length, 0);
  head[4] = req.flags;
  parts.push(head);
  req.rows.forEach((row, i) => {
    if (row.digest.length !== DIGEST_BYTES) throw new WireError(WireErrorCode.BAD_BATCH, `row ${i}: digest of ${row.digest.length} bytes`);
    const lead = Buffer.allocUnsafe(25);
    lead.writeUInt32BE(row.index >>> 0, 0);
    row.digest.copy(lead, 4);
    if (row.repeat && i > 0) {
      lead[24] = BatchRowType.REPEAT;
      parts.push(lead);
      return;
    }
    const hasInfo4 = row.info4 !== 0;
    lead[24] = BatchRowType.HAS_INFO | BatchRowType.HAS_GEN | BatchRowType.HAS_TTL | (hasInfo4 ? BatchRowType.HAS_INFO4 : 0);
    parts.push(lead);
    const attrs = Buffer.allocUnsafe(3 + (hasInfo4 ? 1 : 0) + 2 + 4 + 4);
    let p = 0;
    attrs[p++] = row.info1;
    attrs[p++] = row.info2;
    attrs[p++] = row.info3;
    if (hasInfo4) attrs[p++] = row.info4;
    attrs.writeUInt16BE(row.generation & 0xffff, p);
    attrs.writeUInt32BE(row.recordTtl >>> 0, p + 2);
    attrs.writeUInt16BE(row.fields.length, p + 6);
    attrs.writeUInt16BE(row.ops.length, p + 8);
    parts.push(attrs);
    for (const f of row.fields) {
      const h = Buffer.allocUnsafe(5);
      h.writeUInt32BE(f.data.length + 1, 0);
      h[4] = f.type;
      parts.push(h, f.data);
    }
    for (const o of row.ops) {
      const h = Buffer.allocUnsafe(8);
      h.writeUInt32BE(4 + o.name.length + o.value.length, 0);
      h[4] = o.op;
      h[5] = o.particleType;
      h[6] = o.flags;
      h[7] = o.name.length;
      parts.push(h, o.name, o.value);
    }
  });
  return Buffer.concat(parts);
}
