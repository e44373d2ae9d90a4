/**
 * Steps 2-3 of a replicated (XDR) apply: the incoming version is stored, keeping the source's
 * generation, LUT and void time, only if it wins against the local one by the conflict policy;
 * an exact tie is broken the same way at every site, so delivery order and re-delivery never
 * change the outcome. Allowed on a fenced namespace (that is how the passive site is fed).
 */
import type { ApplyResult } from '../api.js';
import { encodeRecord, type StoredRecord } from '../storage/record-format.js';
import { binNameError } from '../namespace/bin-ops.js';
import { CITRUSLEAF_EPOCH_S, ConflictPolicy, DIGEST_BYTES, RecordOrigin, ResultCode, WriteKind, type ConflictPolicyId, type RecordVersion, type ResultCodeId } from '../types.js';
import type { TransactionContext } from './context.js';
import type { Computed } from './transaction.js';

export function computeReplicated(ctx: TransactionContext, v: RecordVersion, policy: ConflictPolicyId): Computed<ApplyResult> {
  const refused = (resultCode: ResultCodeId): Computed<ApplyResult> => ({ result: { resultCode, applied: false }, written: undefined });
  if (v.digest.length !== DIGEST_BYTES) return refused(ResultCode.PARAMETER);
  for (const b of v.bins) if (binNameError(b.name)) return refused(ResultCode.BIN_NAME);
  if (!validLut(v.lutMs) || !Number.isInteger(v.generation) || v.generation < 0 || v.generation > 0xffffffff) {
    return refused(ResultCode.PARAMETER);
  }
  // A destination out of space refuses too (the receiver retries the batch later).
  if (ctx.refusesWrite(v.set)) {
    ctx.counters.fail_out_of_space++;
    return refused(ResultCode.OUT_OF_SPACE);
  }
  const e = ctx.entry;
  const found = ctx.store.lookup(v.digest, e);
  if (found) {
    const local = ctx.store.read(v.digest);
    const cmp = local ? compareVersions(v, local, policy) : 1;
    if (cmp <= 0) {
      ctx.counters.xdr_lost_conflict++;
      return refused(ResultCode.LOST_CONFLICT);
    }
  }
  const written = ctx.storeVersion({
    digest: v.digest,
    set: v.set,
    generation: v.generation,
    lutMs: v.lutMs,
    voidTimeS: v.voidTimeS,
    tombstone: v.tombstone,
    key: v.key,
    bins: v.tombstone ? [] : v.bins,
    kind: v.tombstone ? WriteKind.REPLICATED_DELETE : WriteKind.REPLICATED_WRITE,
    origin: v.tombstone && (v.origin === RecordOrigin.EXPIRED || v.origin === RecordOrigin.REPLICATED_EXPIRED) ? RecordOrigin.REPLICATED_EXPIRED : RecordOrigin.REPLICATED,
  });
  ctx.counters.xdr_write_success++;
  return { result: { resultCode: ResultCode.OK, applied: true }, written };
}

/**
 * Orders two versions of one record: > 0 when `a` wins. Policy `generation` compares
 * (generation, LUT), `last-update-time` (LUT, generation); an exact tie is broken by the
 * encoded bodies so every site picks the same winner whatever the delivery order.
 */
export function compareVersions(a: RecordVersion | StoredRecord, b: RecordVersion | StoredRecord, policy: ConflictPolicyId): number {
  const byGen = a.generation - b.generation;
  const byLut = a.lutMs - b.lutMs;
  const first = policy === ConflictPolicy.LAST_UPDATE_TIME ? byLut : byGen;
  const second = policy === ConflictPolicy.LAST_UPDATE_TIME ? byGen : byLut;
  if (first !== 0) return Math.sign(first);
  if (second !== 0) return Math.sign(second);
  // Same (generation, LUT): only an expiry tombstone and the version it expired tie this way,
  // and the tombstone wins (a shipped copy of an expired version never revives it).
  if (a.tombstone !== b.tombstone) return a.tombstone ? 1 : -1;
  return Buffer.compare(canonicalBody(a), canonicalBody(b));
}

function canonicalBody(v: RecordVersion | StoredRecord): Buffer {
  const bins = [...v.bins].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  const setName = 'set' in v ? v.set : v.setName;
  const r: StoredRecord = { digest: v.digest, setName, generation: v.generation, lutMs: v.lutMs, voidTimeS: v.voidTimeS, tombstone: v.tombstone, bins };
  return encodeRecord(r, 0).subarray(12);
}

/** LUTs the index can hold: ms from the Aerospike epoch, 40 bits. */
function validLut(lutMs: number): boolean {
  const rel = lutMs - CITRUSLEAF_EPOCH_S * 1000;
  return Number.isInteger(lutMs) && rel >= 0 && rel < 2 ** 40;
}

