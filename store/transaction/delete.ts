/**
 * Step 2-3 of a delete: a remove, a delete-record operation, or a write that left no bins. A
 * deleted record becomes a durable tombstone carrying the next generation and LUT, so a cold
 * restart never brings it back and the shipper ships the delete in order with the writes.
 */
import { ResultCode, WriteKind, type Bin, type RecordCommand, type RecordResult, type UserKey } from '../types.js';
import type { TransactionContext } from './context.js';
import { fail, nextMeta, ok } from './record-meta.js';
import type { Computed } from './transaction.js';

export interface DeleteInput {
  /** The index held an entry (live, expired or tombstone); ctx.entry holds it. */
  found: boolean;
  /** The record exists for the client (not a tombstone, not expired). */
  live: boolean;
  /** The command asked for the delete (rather than leaving no bins). */
  deleted: boolean;
  prevKey: UserKey | undefined;
  opResults: Bin[];
  nowMs: number;
}

export function computeDelete(ctx: TransactionContext, cmd: RecordCommand, d: DeleteInput): Computed<RecordResult> {
  if (!d.live) {
    if (d.deleted) {
      ctx.counters.client_delete_not_found++;
      return { result: fail(ResultCode.NOT_FOUND), written: undefined };
    }
    return { result: ok(0, 0, [], 0), written: undefined };
  }
  const meta = nextMeta(d.found ? ctx.entry : undefined, d.nowMs);
  const written = ctx.storeVersion({
    digest: cmd.digest,
    set: cmd.set,
    generation: meta.generation,
    lutMs: meta.lutMs,
    voidTimeS: 0,
    tombstone: true,
    key: d.prevKey,
    bins: [],
    kind: WriteKind.DELETE,
  });
  ctx.counters.client_delete_success++;
  return { result: ok(meta.generation, 0, d.opResults, meta.lutMs), written };
}
