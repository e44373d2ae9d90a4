/**
 * Steps 2-3 of a replica write: a version the partition's master stored and sent over the fabric
 * is stored here as is (generation, LUT, void time, origin and write kind kept), but only if it
 * is newer in version order (generation, then LUT) than the local copy, so a late or duplicated
 * fabric message never regresses a record. No further replication (the master sends to every
 * replica itself), and no XDR conflict counters: this is the same site's data.
 */
import type { ApplyResult } from '../api.js';
import type { StoredRecord } from '../storage/record-format.js';
import { ConflictPolicy, RecordOrigin, ResultCode, type WriteKindId } from '../types.js';
import type { TransactionContext } from './context.js';
import { compareVersions } from './replicated.js';
import type { Computed } from './transaction.js';

export function computeReplica(ctx: TransactionContext, r: StoredRecord, kind: WriteKindId): Computed<ApplyResult> {
  const e = ctx.entry;
  if (ctx.store.lookup(r.digest, e)) {
    // The index holds the version order (generation, LUT, tombstone); the stored record is read
    // only for an exact tie, which the canonical bodies break.
    const byIndex = r.generation !== e.generation ? r.generation - e.generation : r.lutMs !== e.lutMs ? r.lutMs - e.lutMs : r.tombstone !== e.tombstone ? (r.tombstone ? 1 : -1) : 0;
    const local = byIndex === 0 ? ctx.store.read(r.digest) : undefined;
    const cmp = byIndex !== 0 ? byIndex : local ? compareVersions(r, local, ConflictPolicy.GENERATION) : 1;
    if (cmp <= 0) return { result: { resultCode: ResultCode.OK, applied: false }, written: undefined };
  }
  const written = ctx.storeVersion({
    digest: r.digest,
    set: r.setName,
    generation: r.generation,
    lutMs: r.lutMs,
    voidTimeS: r.voidTimeS,
    tombstone: r.tombstone,
    key: r.key,
    bins: r.tombstone ? [] : r.bins,
    kind,
    origin: r.origin ?? RecordOrigin.LOCAL,
  });
  return { result: { resultCode: ResultCode.OK, applied: true }, written };
}
