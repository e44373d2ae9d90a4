/**
 * Group commit of fsyncs: produce handlers ask `whenDurable()` after appending; all requests that
 * arrive before the next round share one fsync of every dirty file.
 *
 * A failed flush fails the round: every waiter of that round is rejected (a produce must not be
 * acknowledged as durable when its fsync failed), and the target stays dirty, so the next round
 * flushes it again instead of taking it for clean.
 */
import { ErrorCode, KafkaError } from '../protocol/errors.js';

export interface Flushable {
  /** Rejects when the data could not be made durable; the target must then still count as dirty. */
  flush(): Promise<void>;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class Flusher {
  private waiters: Waiter[] = [];
  private readonly dirty = new Set<Flushable>();
  private running = false;

  /** `onFlushed` runs after every round (the broker wakes long-polling fetches with it). */
  constructor(private readonly onFlushed: () => void = () => {}) {}

  markDirty(target: Flushable): void {
    this.dirty.add(target);
  }

  /**
   * Resolves once everything marked dirty before this call is on disk; rejects with a
   * KAFKA_STORAGE_ERROR KafkaError when a flush of that round failed.
   */
  whenDurable(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.running) this.schedule();
    });
  }

  private schedule(): void {
    this.running = true;
    setImmediate(() => void this.round());
  }

  private async round(): Promise<void> {
    const waiters = this.waiters;
    this.waiters = [];
    const targets = [...this.dirty];
    this.dirty.clear();
    const results = await Promise.allSettled(targets.map((t) => t.flush()));
    let failure: Error | undefined;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      this.dirty.add(targets[i]!);
      failure ??= r.reason instanceof KafkaError
        ? r.reason
        : new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, `flush failed: ${(r.reason as Error)?.message ?? String(r.reason)}`, { cause: r.reason });
    });
    this.onFlushed();
    for (const w of waiters) {
      if (failure) w.reject(failure);
      else w.resolve();
    }
    if (this.waiters.length > 0) this.schedule();
    else this.running = false;
  }

  /** Flushes everything still dirty (used periodically under the `os` policy and on close). */
  async flushAll(): Promise<void> {
    if (this.dirty.size === 0 && !this.running) return;
    await this.whenDurable();
  }
}
