/**
 * A token bucket for migration throughput: records per second and bytes per second, either
 * 0 = unlimited, changeable at run time (set-config). A bucket holds at most one second of
 * tokens, so an idle period does not turn into a burst larger than the cap. Time and sleeping go
 * through the Clock and Timers passed in (virtual under the simulator); bottleneck, used by the
 * shipper, schedules on real timers, which is why migrations do not use it.
 */
import { sleep, type Timers } from '../runtime/index.js';

/** Longest single wait, so a lowered cap or a raised one takes effect promptly. */
const WAIT_MS_MAX = 100;

export class RateLimit {
  #records = 0;
  #bytes = 0;
  #lastMs: number;
  recordsPerSecMax = 0;
  bytesPerSecMax = 0;
  readonly counters = { throttled_waits: 0 };

  constructor(
    private readonly clock: { nowMs(): number },
    private readonly timers: Timers,
  ) {
    this.#lastMs = clock.nowMs();
  }

  /** Resolves once one record of `bytes` may go. */
  async take(bytes: number): Promise<void> {
    for (;;) {
      this.#refill();
      const okRecords = this.recordsPerSecMax <= 0 || this.#records >= 1;
      // A record larger than a second's worth of bytes goes once the bucket is full.
      const okBytes = this.bytesPerSecMax <= 0 || this.#bytes >= Math.min(bytes, this.bytesPerSecMax);
      if (okRecords && okBytes) {
        if (this.recordsPerSecMax > 0) this.#records -= 1;
        if (this.bytesPerSecMax > 0) this.#bytes -= bytes;
        return;
      }
      this.counters.throttled_waits++;
      const needRecords = this.recordsPerSecMax > 0 ? ((1 - this.#records) / this.recordsPerSecMax) * 1000 : 0;
      const needBytes = this.bytesPerSecMax > 0 ? ((Math.min(bytes, this.bytesPerSecMax) - this.#bytes) / this.bytesPerSecMax) * 1000 : 0;
      await sleep(this.timers, Math.max(1, Math.min(WAIT_MS_MAX, Math.ceil(Math.max(needRecords, needBytes)))));
    }
  }

  #refill(): void {
    const now = this.clock.nowMs();
    const dt = Math.max(0, now - this.#lastMs) / 1000;
    this.#lastMs = now;
    this.#records = this.recordsPerSecMax > 0 ? Math.min(this.recordsPerSecMax, this.#records + dt * this.recordsPerSecMax) : 0;
    this.#bytes = this.bytesPerSecMax > 0 ? Math.min(this.bytesPerSecMax, this.#bytes + dt * this.bytesPerSecMax) : 0;
  }
}
