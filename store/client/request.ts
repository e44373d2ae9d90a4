/**
 * Builds AS_MSG requests from store-shaped commands (the inverse of store/wire/command.ts), so
 * ferry's tools speak the same vocabulary over the wire as in process.
 */
import {
  ExistsPolicy,
  GenerationPolicy,
  OpType,
  isExpiredOrigin,
  type RecordCommand,
  type RecordVersion,
  type ConflictPolicyId,
} from '../types.js';
import { encodeRequestTtl } from '../wire/command.js';
import { FieldType, Info1, Info2, Info3, emptyHeader, field, type Field, type MsgHeader, type WireOp } from '../wire/message.js';
import { encodeReplicatedField } from '../wire/replicated.js';

export interface EncodedRequest {
  header: MsgHeader;
  fields: Field[];
  ops: WireOp[];
}

const READ_OPS: ReadonlySet<number> = new Set([OpType.READ, OpType.CDT_READ, OpType.EXP_READ, OpType.BIT_READ, OpType.HLL_READ]);

export function recordFields(cmd: Pick<RecordCommand, 'namespace' | 'set' | 'digest' | 'key'>): Field[] {
  const fields = [field(FieldType.NAMESPACE, cmd.namespace), field(FieldType.SET, cmd.set), field(FieldType.DIGEST, cmd.digest)];
  if (cmd.key) fields.push(field(FieldType.KEY, Buffer.concat([Buffer.of(cmd.key.type), cmd.key.bytes])));
  return fields;
}

/** Header bits and ops of a command, without fields (shared by single commands and batch rows). */
export function commandAttributes(cmd: RecordCommand): { header: MsgHeader; ops: WireOp[] } {
  const h = emptyHeader();
  const ops: WireOp[] = cmd.ops.map((o) => ({
    op: o.op,
    particleType: o.value.type,
    flags: 0,
    name: Buffer.from(o.bin, 'utf8'),
    value: o.value.bytes,
  }));
  const isDelete = cmd.ops.length === 1 && cmd.ops[0]!.op === OpType.DELETE;
  if (isDelete) {
    h.info2 = Info2.WRITE | Info2.DELETE | (cmd.durableDelete ? Info2.DURABLE_DELETE : 0);
    ops.length = 0;
  } else {
    for (const o of cmd.ops) {
      if (READ_OPS.has(o.op)) h.info1 |= Info1.READ;
      else h.info2 |= Info2.WRITE;
    }
    if (cmd.headerOnly) h.info1 |= Info1.READ | Info1.NOBINDATA;
    if (cmd.readAll) {
      h.info1 |= Info1.READ | Info1.GET_ALL;
      if (h.info2 & Info2.WRITE) ops.push({ op: OpType.READ, particleType: 0, flags: 0, name: Buffer.alloc(0), value: Buffer.alloc(0) });
    }
    if (h.info1 === 0 && h.info2 === 0) h.info1 = Info1.READ | Info1.GET_ALL;
    if (cmd.respondAllOps) h.info2 |= Info2.RESPOND_ALL_OPS;
    if (cmd.durableDelete && h.info2 & Info2.WRITE) h.info2 |= Info2.DURABLE_DELETE;
  }
  if (h.info2 & Info2.WRITE) {
    switch (cmd.exists ?? ExistsPolicy.UPSERT) {
      case ExistsPolicy.CREATE_ONLY:
        h.info2 |= Info2.CREATE_ONLY;
        break;
      case ExistsPolicy.UPDATE_ONLY:
        h.info3 |= Info3.UPDATE_ONLY;
        break;
      case ExistsPolicy.REPLACE:
        h.info3 |= Info3.CREATE_OR_REPLACE;
        break;
      case ExistsPolicy.REPLACE_ONLY:
        h.info3 |= Info3.REPLACE_ONLY;
        break;
      default:
        break;
    }
    if (cmd.generationPolicy === GenerationPolicy.EXPECT_EQUAL) h.info2 |= Info2.GENERATION;
    if (cmd.generationPolicy === GenerationPolicy.EXPECT_GREATER) h.info2 |= Info2.GENERATION_GT;
    if (cmd.generationPolicy) h.generation = cmd.generation ?? 0;
    h.recordTtl = encodeRequestTtl(cmd.ttlS);
  }
  h.transactionTtl = cmd.timeoutMs ?? 0;
  return { header: h, ops };
}

export function encodeRecordCommand(cmd: RecordCommand): EncodedRequest {
  const { header, ops } = commandAttributes(cmd);
  return { header, fields: recordFields(cmd), ops };
}

/** A replicated write (field 250) of a full record version. */
export function encodeReplicatedWrite(v: RecordVersion, policy: ConflictPolicyId, timeoutMs = 0): EncodedRequest {
  const header = { ...emptyHeader(), info2: Info2.WRITE, transactionTtl: timeoutMs };
  const fields = recordFields(v);
  fields.push(
    field(
      FieldType.FERRY_REPLICATED,
      encodeReplicatedField({ policy, tombstone: v.tombstone, generation: v.generation, lutMs: v.lutMs, voidTimeS: v.voidTimeS, expired: isExpiredOrigin(v.origin) }),
    ),
  );
  const ops: WireOp[] = v.tombstone
    ? []
    : v.bins.map((b) => ({ op: OpType.WRITE, particleType: b.type, flags: 0, name: Buffer.from(b.name, 'utf8'), value: b.bytes }));
  return { header, fields, ops };
}
