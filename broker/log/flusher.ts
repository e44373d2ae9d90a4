/**
 * Group commit of fsyncs: produce handlers ask `whenDurable()` after appending; all requests that
 * arrive before the next round share one fsync of every dirty file.
 */
export interface Flushable {
  flush(): Promise<void>;
}

export class Flusher {
  private waiters: (() => void)[] = [];
  private readonly dirty = new Set<Flushable>();
  private running = false;

  /** `onFlushed` runs after every round (the broker wakes long-polling fetches with it). */
  constructor(private readonly onFlushed: () => void = () => {}) {}

  markDirty(target: Flushable): void {
    this.dirty.add(target);
  }

  /** Resolves once everything marked dirty before this call is on disk. */
  whenDurable(): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
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
    await Promise.all(targets.map((t) => t.flush().catch(() => undefined)));
    this.onFlushed();
    for (const w of waiters) w();
    if (this.waiters.length > 0) this.schedule();
    else this.running = false;
  }

  /** Flushes everything still dirty (used periodically under the `os` policy and on close). */
  async flushAll(): Promise<void> {
    if (this.dirty.size === 0 && !this.running) return;
    await this.whenDurable();
  }
}
