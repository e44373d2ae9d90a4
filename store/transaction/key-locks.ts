/**
 * The record lock: commands on one key run one at a time, in arrival order.
 *
 * A command that finds its key free runs at once, synchronously; only when it has to wait (for a
 * group commit, or later for replicas) does the key get a queue, and later commands on the key
 * chain behind it. More than `pendingLimit()` commands queued on one key are refused (the caller
 * answers KEY_BUSY): a hot key cannot pile up unbounded work. Client commands and replicated
 * (XDR) applies share this one lock manager and this one limit.
 *
 * Invariants: a key has a queue exactly while something holds or waits for its lock, and the
 * queue's `pending` counts those commands (>= 1). A failed command never blocks the next one.
 */
import assert from 'node:assert/strict';
import type { Clock } from '../runtime/index.js';

interface KeyQueue {
  pending: number;
  /** The last queued command (it may reject: the next one runs after it either way). */
  tail: Promise<unknown>;
}

/** Returned by `run` instead of running when the key already has `pendingLimit()` commands queued. */
export const KEY_BUSY: unique symbol = Symbol('key busy');

export class KeyLocks {
  readonly #queues = new Map<string, KeyQueue>();

  constructor(
    private readonly pendingLimit: () => number,
    private readonly clock: Clock,
  ) {}

  /** Keys with a command holding or waiting for their lock. */
  get size(): number {
    return this.#queues.size;
  }

  /** True while a command holds or waits for the key's lock (background expiry skips such keys). */
  isLocked(digest: Buffer): boolean {
    return this.#queues.size > 0 && this.#queues.has(lockKey(digest));
  }

  /**
   * Runs `fn` holding the key's lock; `fn` is told how long it waited in the queue (0 when the key
   * was free). When `fn` finishes synchronously no queue is created (the hot path allocates
   * nothing). A rejected `fn` rejects this call but releases the lock.
   */
  run<T>(digest: Buffer, fn: (waitedMs: number) => T | Promise<T>): T | Promise<T> | typeof KEY_BUSY {
    if (this.#queues.size === 0) return this.#hold(undefined, digest, fn(0));
    const key = lockKey(digest);
    const q = this.#queues.get(key);
    if (!q) return this.#hold(key, digest, fn(0));
    if (q.pending >= this.pendingLimit()) return KEY_BUSY;
    q.pending++;
    const queuedAtMs = this.clock.nowMs();
    const go = (): T | Promise<T> => fn(this.clock.nowMs() - queuedAtMs);
    const run = q.tail.then(go, go);
    q.tail = run;
    return this.#release(key, q, run);
  }

  /** Resolves when every command queued now has finished. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#queues.values()].map((q) => q.tail));
  }

  /** A command that ran at once: if it must wait, the key gets a queue until it is done. */
  #hold<T>(known: string | undefined, digest: Buffer, r: T | Promise<T>): T | Promise<T> {
    if (!(r instanceof Promise)) return r;
    const key = known ?? lockKey(digest);
    assert(!this.#queues.has(key), 'a free key already had a queue');
    const q: KeyQueue = { pending: 1, tail: r };
    this.#queues.set(key, q);
    return this.#release(key, q, r);
  }

  /**
   * The command's own promise, settled after its lock is released: one reaction on `run` (it is
   * registered before any later command's, so the count drops before the next one starts).
   */
  #release<T>(key: string, q: KeyQueue, run: Promise<T>): Promise<T> {
    const done = (): void => {
      q.pending--;
      assert(q.pending >= 0, 'key lock released more often than taken');
      if (q.pending === 0 && this.#queues.get(key) === q) this.#queues.delete(key);
    };
    return run.then(
      (v) => {
        done();
        return v;
      },
      (err: unknown) => {
        done();
        throw err;
      },
    );
  }
}

/** A digest as a Map key: latin1 maps each byte to one character (half the length of key, and cheaper to build). */
function lockKey(digest: Buffer): string {
  return digest.toString('latin1');
}

