/**
 * `migrate-fill-delay` (seconds, default 0 = off, dynamic): while a member that left may still
 * come back, the nodes standing in for it are not filled. A member that leaves is expected back
 * for the delay after it left; one that rejoins is expected no longer. While any is expected, a
 * receiver refuses a START for a partition it did not hold at the start of the round (a fill,
 * not a delta) and says when to try again; writes still replicate to the stand-ins, as to every
 * holder. A member back within the delay takes its partitions again (a delta) and the stand-ins'
 * copies are dropped unfilled; after the delay the fills go ahead. Like Aerospike's, a delta to
 * a node that holds a copy is never delayed.
 *
 * Pure bookkeeping: the time comes from the caller.
 */
import assert from 'node:assert/strict';

/** Largest delay accepted (Aerospike's range is 0..4 h). */
export const MIGRATE_FILL_DELAY_S_MAX = 4 * 3600;

export class FillDelay {
  #delayS = 0;
  #members = new Set<string>();
  /** Members that left, with when they left. */
  readonly #departedAtMs = new Map<string, number>();

  get delayS(): number {
    return this.#delayS;
  }

  set delayS(s: number) {
    assert.ok(Number.isInteger(s) && s >= 0 && s <= MIGRATE_FILL_DELAY_S_MAX, `migrate-fill-delay ${s} outside 0..${MIGRATE_FILL_DELAY_S_MAX}`);
    this.#delayS = s;
  }

  /** Called with the member ids after every membership change. */
  observe(members: readonly string[], nowMs: number): void {
    const now = new Set(members);
    for (const id of this.#members) if (!now.has(id)) this.#departedAtMs.set(id, nowMs);
    for (const id of now) this.#departedAtMs.delete(id);
    this.#members = now;
  }

  /** ms until no member that left is expected back any more; 0 = fills may go. */
  remainingMs(nowMs: number): number {
    if (this.#delayS === 0) return 0;
    let out = 0;
    for (const [id, at] of this.#departedAtMs) {
      const left = at + this.#delayS * 1000 - nowMs;
      if (left > 0) out = Math.max(out, left);
      else this.#departedAtMs.delete(id);
    }
    return out;
  }
}
