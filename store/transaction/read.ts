/**
 * A read (get, exists, header-only get, or the read operations of an operate): answers from the
 * index entry alone when no bins are asked for, otherwise from the stored record. A record whose
 * void time has passed is not found even before expiry removes it.
 */
import { OpType, ResultCode, type Bin, type RecordCommand, type RecordResult } from '../types.js';
import { NULL_VALUE, binsToMap } from '../namespace/bin-ops.js';
import type { TransactionContext } from './context.js';
import { fail, ok } from './record-meta.js';

/** `live`: the entry in ctx.entry is a record the client may see. */
export function computeRead(ctx: TransactionContext, cmd: RecordCommand, live: boolean): RecordResult {
  const e = ctx.entry;
  if (!live) {
    ctx.counters.client_read_not_found++;
    return fail(ResultCode.NOT_FOUND);
  }
  ctx.counters.client_read_success++;
  if (cmd.headerOnly) return ok(e.generation, e.voidTimeS, [], e.lutMs);
  const readsBins = cmd.readAll || cmd.ops.some((o) => o.op === OpType.READ);
  if (!readsBins) return ok(e.generation, e.voidTimeS, [], e.lutMs);
  const rec = ctx.store.read(cmd.digest);
  if (!rec) return fail(ResultCode.NOT_FOUND);
  let bins: Bin[];
  if (cmd.readAll) bins = rec.bins;
  else {
    const m = binsToMap(rec.bins);
    bins = [];
    for (const o of cmd.ops) {
      if (o.op !== OpType.READ) continue;
      if (o.bin === '') {
        bins.push(...rec.bins);
        continue;
      }
      const v = m.get(o.bin);
      if (v) bins.push({ name: o.bin, ...v });
      else if (cmd.respondAllOps) bins.push({ name: o.bin, ...NULL_VALUE });
    }
  }
  const r = ok(rec.generation, rec.voidTimeS, bins, rec.lutMs);
  if (rec.key) r.key = rec.key;
  return r;
}
