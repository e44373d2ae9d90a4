/**
 * A counting limit on work in flight, shared by every partition a receiver consumes: a
 * destination with commit-to-device answers a replicated write only after a group commit, so
 * throughput is (writes in flight) / (flush time) and the writes of all partitions must share one
 * budget (and one connection pool of the same size) rather than each batch taking its own.
 * Waiters are served in arrival order.
 */
export class InFlightLimit {
  private used = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`in-flight limit must be a positive integer, got ${max}`);
  }

  get inFlight(): number {
    return this.used;
  }

  /** Runs `fn` once a slot is free; the slot is released when it settles. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.used >= this.max) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.used++;
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter (used stays the same).
      if (next) next();
      else this.used--;
    }
  }
}
