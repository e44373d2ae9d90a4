/**
 * Maps AS_MSG requests (single-record messages and batch rows) to store RecordCommands, and
 * RecordResults back to AS_MSG responses. Pure.
 */
import {
  BIN_NAME_BYTES_MAX,
  DIGEST_BYTES,
  ExistsPolicy,
  GenerationPolicy,
  NAMESPACE_NAME_BYTES_MAX,
  OpType,
  ParticleType,
  ResultCode,
  SET_NAME_BYTES_MAX,
  TTL_S_MAX,
  Ttl,
  type Bin,
  type ExistsPolicyId,
  type Op,
  RecordOrigin,
  type OpTypeId,
  type ParticleTypeId,
  type RecordCommand,
  type RecordResult,
  type RecordVersion,
  type ResultCodeId,
  type UserKey,
  type Value,
} from '../types.js';
import { FieldType, Info1, Info2, Info3, KNOWN_FIELD_TYPES, type Field, type MsgHeader, type WireOp, EMPTY } from './message.js';
import { decodeReplicatedField, type ReplicatedMeta } from './replicated.js';
import { WireError } from './errors.js';

/** Op types the store executes. */
const SCALAR_OPS: ReadonlySet<number> = new Set([
  OpType.READ,
  OpType.WRITE,
  OpType.INCR,
  OpType.APPEND,
  OpType.PREPEND,
  OpType.TOUCH,
  OpType.DELETE,
]);
/** Op types Aerospike defines that ferry does not execute yet (answered UNSUPPORTED_FEATURE). */
const UNSUPPORTED_OPS: ReadonlySet<number> = new Set([
  OpType.CDT_READ,
  OpType.CDT_MODIFY,
  OpType.EXP_READ,
  OpType.EXP_MODIFY,
  OpType.BIT_READ,
  OpType.BIT_MODIFY,
  OpType.HLL_READ,
  OpType.HLL_MODIFY,
]);
/** Particle types a stored value may have. */
const PARTICLE_TYPES: ReadonlySet<number> = new Set(Object.values(ParticleType));
/** Fields that select features ferry does not implement for single records. */
const UNSUPPORTED_RECORD_FIELDS: ReadonlySet<number> = new Set([
  FieldType.TXN_ID,
  FieldType.TXN_DEADLINE,
  FieldType.RECORD_VERSION,
  FieldType.UDF_PACKAGE_NAME,
  FieldType.UDF_FUNCTION,
  FieldType.UDF_ARGLIST,
  FieldType.UDF_OP,
  FieldType.FILTER,
]);

/** Fields a single-record request may carry (besides the unsupported ones). */
const RECORD_FIELDS: ReadonlySet<number> = new Set([
  FieldType.NAMESPACE,
  FieldType.SET,
  FieldType.KEY,
  FieldType.DIGEST,
  FieldType.FERRY_REPLICATED,
]);

/** A message-shaped request: an AS_MSG or a batch row. */
export interface RecordRequest extends MsgHeader {
  fields: readonly Field[];
  ops: readonly WireOp[];
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; resultCode: ResultCodeId; message: string };

const fail = (resultCode: ResultCodeId, message: string): { ok: false; resultCode: ResultCodeId; message: string } => ({
  ok: false,
  resultCode,
  message,
});

export interface ParsedRecordCommand {
  namespace: string;
  cmd: RecordCommand;
  /** Present when the request carries field 250 (a replicated write). */
  replicated?: { meta: ReplicatedMeta; version: RecordVersion };
}

/** Decodes a request TTL for writes (record_ttl u32). Undefined when invalid. */
export function requestTtlS(recordTtl: number): number | undefined {
  const v = recordTtl >>> 0;
  if (v === 0xffffffff) return Ttl.NEVER_EXPIRE;
  if (v === 0xfffffffe) return Ttl.DONT_UPDATE;
  if (v <= TTL_S_MAX) return v;
  return undefined;
}

/** Encodes a TTL (seconds or Ttl.*) as record_ttl. */
export function encodeRequestTtl(ttlS: number | undefined): number {
  if (ttlS === undefined) return 0;
  if (ttlS === Ttl.NEVER_EXPIRE) return 0xffffffff;
  if (ttlS === Ttl.DONT_UPDATE) return 0xfffffffe;
  return ttlS >>> 0;
}

function utf8Name(b: Buffer): string {
  return b.toString('utf8');
}

function decodeKey(f: Field): Parsed<UserKey> {
  if (f.data.length < 1) return fail(ResultCode.PARAMETER, 'empty KEY field');
  const type = f.data[0]!;
  if (type !== ParticleType.INTEGER && type !== ParticleType.FLOAT && type !== ParticleType.STRING && !isBlobType(type)) {
    return fail(ResultCode.PARAMETER, `key particle type ${type}`);
  }
  if ((type === ParticleType.INTEGER || type === ParticleType.FLOAT) && f.data.length !== 9) {
    return fail(ResultCode.PARAMETER, 'numeric key must have 8 bytes');
  }
  return { ok: true, value: { type: type as ParticleTypeId, bytes: f.data.subarray(1) } };
}

function isBlobType(t: number): boolean {
  return t === ParticleType.BLOB || (t >= ParticleType.JAVA_BLOB && t <= ParticleType.ERLANG_BLOB);
}

/** Checks and maps wire ops to store ops. */
export function decodeOps(ops: readonly WireOp[]): Parsed<Op[]> {
  const out: Op[] = [];
  for (const o of ops) {
    if (o.name.length > BIN_NAME_BYTES_MAX) return fail(ResultCode.BIN_NAME, `bin name of ${o.name.length} bytes`);
    if (UNSUPPORTED_OPS.has(o.op)) return fail(ResultCode.UNSUPPORTED_FEATURE, `op type ${o.op} is not supported`);
    if (!SCALAR_OPS.has(o.op)) return fail(ResultCode.PARAMETER, `unknown op type ${o.op}`);
    if (!PARTICLE_TYPES.has(o.particleType)) return fail(ResultCode.PARAMETER, `unknown particle type ${o.particleType}`);
    if (o.particleType === ParticleType.NULL && o.value.length > 0) return fail(ResultCode.PARAMETER, 'NULL value with bytes');
    const name = utf8Name(o.name);
    switch (o.op) {
      case OpType.WRITE:
      case OpType.INCR:
      case OpType.APPEND:
      case OpType.PREPEND:
        if (name === '') return fail(ResultCode.BIN_NAME, `op ${o.op} without a bin name`);
        break;
      default:
        break;
    }
    if (o.op === OpType.INCR && o.particleType !== ParticleType.INTEGER && o.particleType !== ParticleType.FLOAT) {
      return fail(ResultCode.INCOMPATIBLE_TYPE, 'increment by a non-numeric value');
    }
    if ((o.particleType === ParticleType.INTEGER || o.particleType === ParticleType.FLOAT) && o.value.length !== 8) {
      return fail(ResultCode.PARAMETER, `numeric value of ${o.value.length} bytes`);
    }
    if (o.particleType === ParticleType.BOOL && o.value.length !== 1) return fail(ResultCode.PARAMETER, 'bool value must be 1 byte');
    out.push({ op: o.op as OpTypeId, bin: name, value: { type: o.particleType as ParticleTypeId, bytes: o.value } });
  }
  return { ok: true, value: out };
}

function existsPolicy(info2: number, info3: number): ExistsPolicyId {
  if (info2 & Info2.CREATE_ONLY) return ExistsPolicy.CREATE_ONLY;
  if (info3 & Info3.REPLACE_ONLY) return ExistsPolicy.REPLACE_ONLY;
  if (info3 & Info3.CREATE_OR_REPLACE) return ExistsPolicy.REPLACE;
  if (info3 & Info3.UPDATE_ONLY) return ExistsPolicy.UPDATE_ONLY;
  return ExistsPolicy.UPSERT;
}

/**
 * Maps a single-record request (or batch row with its digest) to a RecordCommand.
 * `digest` overrides the DIGEST field (batch rows carry it outside the fields).
 */
export function parseRecordRequest(req: RecordRequest, digest?: Buffer): Parsed<ParsedRecordCommand> {
  if (req.info4 !== 0) return fail(ResultCode.UNSUPPORTED_FEATURE, 'transactions (info4) are not supported');
  let nsField: Field | undefined;
  let setField: Field | undefined;
  let keyField: Field | undefined;
  let digestField: Field | undefined;
  let replField: Field | undefined;
  for (const f of req.fields) {
    if (UNSUPPORTED_RECORD_FIELDS.has(f.type)) return fail(ResultCode.UNSUPPORTED_FEATURE, `field ${f.type} is not supported`);
    if (!RECORD_FIELDS.has(f.type)) {
      return fail(ResultCode.PARAMETER, KNOWN_FIELD_TYPES.has(f.type) ? `field ${f.type} not allowed here` : `unknown field type ${f.type}`);
    }
    if (f.type === FieldType.NAMESPACE) nsField ??= f;
    else if (f.type === FieldType.SET) setField ??= f;
    else if (f.type === FieldType.KEY) keyField ??= f;
    else if (f.type === FieldType.DIGEST) digestField ??= f;
    else if (f.type === FieldType.FERRY_REPLICATED) replField ??= f;
  }
  if (!nsField || nsField.data.length === 0) return fail(ResultCode.PARAMETER, 'missing namespace');
  if (nsField.data.length > NAMESPACE_NAME_BYTES_MAX) return fail(ResultCode.NAMESPACE_NOT_FOUND, 'namespace name too long');
  const namespace = nsField.data.toString('utf8');
  const set = setField ? setField.data.toString('utf8') : '';
  if (setField && setField.data.length > SET_NAME_BYTES_MAX) return fail(ResultCode.PARAMETER, 'set name too long');
  const d = digest ?? digestField?.data;
  if (!d || d.length !== DIGEST_BYTES) return fail(ResultCode.PARAMETER, 'missing or malformed digest');
  let key: UserKey | undefined;
  if (keyField) {
    const k = decodeKey(keyField);
    if (!k.ok) return k;
    key = k.value;
  }
  const ops = decodeOps(req.ops);
  if (!ops.ok) return ops;

  const isWrite = (req.info2 & Info2.WRITE) !== 0;
  const isRead = (req.info1 & Info1.READ) !== 0;

  if (replField) {
    if (!isWrite) return fail(ResultCode.PARAMETER, 'replicated write without WRITE');
    let meta: ReplicatedMeta;
    try {
      meta = decodeReplicatedField(replField.data);
    } catch (err) {
      return fail(ResultCode.PARAMETER, (err as WireError).message);
    }
    const bins: Bin[] = [];
    for (const o of ops.value) {
      if (o.op !== OpType.WRITE || o.value.type === ParticleType.NULL) return fail(ResultCode.PARAMETER, 'replicated write carries WRITE ops with values only');
      bins.push({ name: o.bin, type: o.value.type, bytes: Buffer.from(o.value.bytes) });
    }
    if (meta.tombstone && bins.length > 0) return fail(ResultCode.PARAMETER, 'tombstone with bins');
    const version: RecordVersion = {
      namespace,
      set,
      digest: Buffer.from(d),
      generation: meta.generation,
      lutMs: meta.lutMs,
      voidTimeS: meta.voidTimeS,
      tombstone: meta.tombstone,
      bins,
      ...(key ? { key: { type: key.type, bytes: Buffer.from(key.bytes) } } : {}),
      ...(meta.expired ? { origin: RecordOrigin.EXPIRED } : {}),
    };
    return {
      ok: true,
      value: { namespace, cmd: { namespace, set, digest: version.digest, ops: [] }, replicated: { meta, version } },
    };
  }

  const cmd: RecordCommand = { namespace, set, digest: Buffer.from(d), ops: [] };
  if (key) cmd.key = { type: key.type, bytes: Buffer.from(key.bytes) };
  // Values are copied: the request buffer is reused after this call returns.
  let storeOps = ops.value.map((o) => ({ op: o.op, bin: o.bin, value: { type: o.value.type, bytes: Buffer.from(o.value.bytes) } }));
  if (req.transactionTtl > 0) cmd.timeoutMs = req.transactionTtl;

  if (isWrite) {
    if (req.info2 & Info2.DELETE) {
      storeOps = [{ op: OpType.DELETE, bin: '', value: { type: ParticleType.NULL, bytes: EMPTY } }];
      if (req.info2 & Info2.DURABLE_DELETE) cmd.durableDelete = true;
    }
    const ttl = requestTtlS(req.recordTtl);
    if (ttl === undefined) return fail(ResultCode.PARAMETER, `bad ttl ${req.recordTtl >>> 0}`);
    cmd.ttlS = ttl;
    cmd.exists = existsPolicy(req.info2, req.info3);
    if (req.info2 & Info2.GENERATION) {
      cmd.generationPolicy = GenerationPolicy.EXPECT_EQUAL;
      cmd.generation = req.generation;
    } else if (req.info2 & Info2.GENERATION_GT) {
      cmd.generationPolicy = GenerationPolicy.EXPECT_GREATER;
      cmd.generation = req.generation;
    }
    if (req.info2 & Info2.RESPOND_ALL_OPS) cmd.respondAllOps = true;
    if (req.info2 & Info2.DURABLE_DELETE) cmd.durableDelete = true;
    // The store answers an empty-name READ inside a write with every bin, in op order.
    if (req.info1 & Info1.GET_ALL) cmd.readAll = true;
    if (storeOps.length === 0) return fail(ResultCode.PARAMETER, 'write without ops');
  } else if (isRead) {
    for (const o of storeOps) {
      if (o.op !== OpType.READ) return fail(ResultCode.PARAMETER, `op ${o.op} in a read-only command`);
    }
    if (req.info1 & Info1.NOBINDATA) {
      cmd.headerOnly = true;
      storeOps = [];
    } else if (req.info1 & Info1.GET_ALL || storeOps.length === 0 || storeOps.some((o) => o.bin === '')) {
      cmd.readAll = true;
      storeOps = storeOps.filter((o) => o.bin !== '');
    }
  } else {
    return fail(ResultCode.PARAMETER, 'neither READ nor WRITE');
  }
  cmd.ops = storeOps;
  return { ok: true, value: { namespace, cmd } };
}

/** Bins of a result as READ ops (bin name, particle type, value). */
export function binsToOps(bins: readonly Bin[], opType: number = OpType.READ): WireOp[] {
  return bins.map((b) => ({ op: opType, particleType: b.type, flags: 0, name: Buffer.from(b.name, 'utf8'), value: b.bytes }));
}

/** Response header of a single-record result. */
export function resultHeader(r: Pick<RecordResult, 'resultCode' | 'generation' | 'voidTimeS'>, transactionTtl = 0): MsgHeader {
  return {
    info1: 0,
    info2: 0,
    info3: 0,
    info4: 0,
    resultCode: r.resultCode,
    generation: r.generation & 0xffff,
    recordTtl: r.voidTimeS >>> 0,
    transactionTtl,
  };
}

/** Wire ops back to values (client side). */
export function opsToBins(ops: readonly WireOp[]): Bin[] {
  return ops.map((o) => ({ name: o.name.toString('utf8'), type: o.particleType as ParticleTypeId, bytes: o.value }));
}

export type { Value };
