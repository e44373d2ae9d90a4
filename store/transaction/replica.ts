/**
 * Steps 2-3 of a replica write: a version the partition's master stored and sent over the fabric
 * is stored here as is (generation, LUT, void time, origin and write kind kept), but only if it
 * is newer in version order (generation, then LUT) than the local copy, so a late or duplicated
 * fabric message never regresses a record. No further replication (the master sends to every
 * replica itself), and no XDR conflict counters: this is the same site's data.
 *
 * A version from the fabric arrives in device format (EncodedVersion): it is judged by its
 * header and stored by copying its bytes; only an exact tie with the local copy by the index
 * decodes it (the canonical bodies break the tie).
 */
import type { ApplyResult } from '../api.js';
import { decodeRecord, type RecordHeader, type StoredRecord } from '../storage/record-format.js';
import { ConflictPolicy, RecordOrigin, ResultCode, type WriteKindId } from '../types.js';
import type { TransactionContext } from './context.js';
import { compareVersions } from './replicated.js';
import type { Computed } from './transaction.js';

/** A version as its master sent it: a record in device format at `bytes[off..]`, checked (CRC and layout), not decoded. */
export interface EncodedVersion {
  bytes: Buffer;
  off: number;
  header: RecordHeader;
  /** The record's digest (a view of `bytes`). */
  digest: Buffer;
}

export function computeReplica(ctx: TransactionContext, r: StoredRecord, kind: WriteKindId): Computed<ApplyResult> {
  if (!newerThanLocal(ctx, r.digest, r, r)) return { result: { resultCode: ResultCode.OK, applied: false }, written: undefined };
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

/** computeReplica for a version in device format; `stored` says whether it was stored (steps 5-6 then follow). */
export function computeReplicaEncoded(ctx: TransactionContext, v: EncodedVersion, kind: WriteKindId): { result: ApplyResult; stored: boolean } {
  // A tombstone is stored without bins; one that carries some is stored the decoded way.
  if (v.header.tombstone && v.header.binCount > 0) {
    const c = computeReplica(ctx, decodeRecord(v.bytes, v.off), kind);
    return { result: c.result, stored: c.written !== undefined };
  }
  if (!newerThanLocal(ctx, v.digest, v.header, v)) return { result: { resultCode: ResultCode.OK, applied: false }, stored: false };
  ctx.storeEncoded(v, kind);
  return { result: { resultCode: ResultCode.OK, applied: true }, stored: true };
}

/**
 * Whether the incoming version wins over the local copy (true when there is none). The index
 * holds the version order (generation, LUT, tombstone); the stored record is read only for an
 * exact tie, which the canonical bodies break.
 */
function newerThanLocal(ctx: TransactionContext, digest: Buffer, h: { generation: number; lutMs: number; tombstone: boolean }, body: StoredRecord | EncodedVersion): boolean {
  const e = ctx.entry;
  if (!ctx.store.lookup(digest, e)) return true;
  if (h.generation !== e.generation) return h.generation > e.generation;
  if (h.lutMs !== e.lutMs) return h.lutMs > e.lutMs;
  if (h.tombstone !== e.tombstone) return h.tombstone;
  const local = ctx.store.read(digest);
  if (!local) return true;
  const incoming = 'bins' in body ? body : decodeRecord(body.bytes, body.off);
  return compareVersions(incoming, local, ConflictPolicy.GENERATION) > 0;
}
