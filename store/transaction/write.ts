/**
 * Steps 2-3 of a client command (get, exists, put, operate, touch, remove: everything one AS_MSG
 * asks of one record): checks the policies, applies the bin operations to the current bins,
 * computes generation, LUT and void time, and stores the new version. Synchronous: it runs under
 * the key lock in one event-loop turn. Reads go to read.ts, deletes to delete.ts.
 */
import { ExistsPolicy, GenerationPolicy, OpType, ResultCode, SYSTEM_SET_NAME, TTL_S_MAX, Ttl, WriteKind, type Bin, type RecordCommand, type RecordResult, type UserKey, type Value } from '../types.js';
import { NULL_VALUE, OpFailure, applyWriteOp, binNameError, binsToMap, isWriteOp, mapToBins } from '../namespace/bin-ops.js';
import type { TransactionContext } from './context.js';
import { computeDelete } from './delete.js';
import { computeRead } from './read.js';
import { fail, isExpired, nextMeta, ok, voidTimeFor } from './record-meta.js';
import type { Computed } from './transaction.js';

export function computeCommand(ctx: TransactionContext, cmd: RecordCommand): Computed<RecordResult> {
  const now = ctx.nowMs();
  const e = ctx.entry;
  const found = ctx.store.lookup(cmd.digest, e);
  const live = found && !e.tombstone && !isExpired(e, now);
  const writes = cmd.ops.some((o) => isWriteOp(o.op));

  for (const o of cmd.ops) {
    if (o.bin !== '' && binNameError(o.bin)) return { result: fail(ResultCode.BIN_NAME), written: undefined };
  }
  if (!writes) return { result: computeRead(ctx, cmd, live), written: undefined };

  if (ctx.fenced && cmd.set !== SYSTEM_SET_NAME) {
    ctx.counters.fail_forbidden++;
    return { result: fail(ResultCode.FORBIDDEN), written: undefined };
  }
  if (ctx.refusesWrite(cmd.set)) {
    ctx.counters.fail_out_of_space++;
    return { result: fail(ResultCode.OUT_OF_SPACE), written: undefined };
  }
  const exists = cmd.exists ?? ExistsPolicy.UPSERT;
  if (exists === ExistsPolicy.CREATE_ONLY && live) return { result: fail(ResultCode.RECORD_EXISTS), written: undefined };
  if ((exists === ExistsPolicy.UPDATE_ONLY || exists === ExistsPolicy.REPLACE_ONLY) && !live) {
    return { result: fail(ResultCode.NOT_FOUND), written: undefined };
  }
  if (live && cmd.generationPolicy === GenerationPolicy.EXPECT_EQUAL && e.generation !== cmd.generation) {
    ctx.counters.fail_generation++;
    return { result: fail(ResultCode.GENERATION), written: undefined };
  }
  if (live && cmd.generationPolicy === GenerationPolicy.EXPECT_GREATER && (cmd.generation ?? 0) <= e.generation) {
    ctx.counters.fail_generation++;
    return { result: fail(ResultCode.GENERATION), written: undefined };
  }
  const ttl = cmd.ttlS ?? Ttl.NAMESPACE_DEFAULT;
  if (ttl < Ttl.DONT_UPDATE || ttl > TTL_S_MAX) return { result: fail(ResultCode.PARAMETER), written: undefined };

  const prev = live ? ctx.store.read(cmd.digest) : undefined;
  if (cmd.key && prev?.key && !sameValue(cmd.key, prev.key)) return { result: fail(ResultCode.KEY_MISMATCH), written: undefined };

  const replace = exists === ExistsPolicy.REPLACE || exists === ExistsPolicy.REPLACE_ONLY;
  const bins = prev && !replace ? binsToMap(prev.bins) : new Map<string, Value>();
  const opResults: Bin[] = [];
  let deleted = false;
  let recordOp = false;
  for (const op of cmd.ops) {
    if (op.op === OpType.DELETE && op.bin === '') {
      bins.clear();
      deleted = true;
      if (cmd.respondAllOps) opResults.push({ name: op.bin, ...NULL_VALUE });
      continue;
    }
    if (op.op === OpType.TOUCH) {
      if (!live) return { result: fail(ResultCode.NOT_FOUND), written: undefined };
      recordOp = true;
      if (cmd.respondAllOps) opResults.push({ name: op.bin, ...NULL_VALUE });
      continue;
    }
    if (op.op === OpType.READ) {
      if (op.bin === '') for (const [name, v] of bins) opResults.push({ name, ...v });
      else {
        const v = bins.get(op.bin);
        if (v) opResults.push({ name: op.bin, ...v });
        else if (cmd.respondAllOps) opResults.push({ name: op.bin, ...NULL_VALUE });
      }
      continue;
    }
    const r = applyWriteOp(bins, op);
    if (r instanceof OpFailure) {
      if (r.resultCode === ResultCode.INCOMPATIBLE_TYPE || r.resultCode === ResultCode.PARAMETER) ctx.counters.client_lang_error++;
      return { result: fail(r.resultCode), written: undefined };
    }
    if (cmd.respondAllOps) opResults.push({ name: op.bin, ...r });
  }

  const deleteOnly = deleted && bins.size === 0;
  // A delete, or a write that left no bins: the record goes (Aerospike semantics).
  if (deleteOnly || (bins.size === 0 && !recordOp)) return computeDelete(ctx, cmd, { found, live, deleted, prevKey: prev?.key, opResults, nowMs: now });

  const meta = nextMeta(found ? e : undefined, now);
  const voidTimeS = voidTimeFor(ttl, live ? e.voidTimeS : undefined, now, ctx.defaultTtlS);
  const newBins = mapToBins(bins);
  const key = cmd.key ?? prev?.key;
  const size = encodedSize(cmd.set, key, newBins);
  if (size > ctx.maxRecordBytes) {
    ctx.counters.fail_record_too_big++;
    return { result: fail(ResultCode.RECORD_TOO_BIG), written: undefined };
  }
  const written = ctx.storeVersion({ digest: cmd.digest, set: cmd.set, generation: meta.generation, lutMs: meta.lutMs, voidTimeS, tombstone: false, key, bins: newBins, kind: WriteKind.WRITE });
  ctx.noteBins(newBins);
  ctx.counters.client_write_success++;
  const result = ok(meta.generation, voidTimeS, opResults, meta.lutMs);
  if (key && opResults.length > 0) result.key = key;
  return { result, written };
}

function encodedSize(set: string, key: UserKey | undefined, bins: Bin[]): number {
  let n = 64 + Buffer.byteLength(set) + (key ? 5 + key.bytes.length : 0);
  for (const b of bins) n += 6 + Buffer.byteLength(b.name) + b.bytes.length;
  return n;
}

function sameValue(a: Value, b: Value): boolean {
  return a.type === b.type && a.bytes.equals(b.bytes);
}
