/**
 * Deterministic discrete-event scheduler: virtual time plus a priority queue of events, popped in
 * (time, sequence) order. Code under simulation gets this scheduler's Clock and Timers (and a
 * seeded Random), so an hour of retries and heartbeats runs in milliseconds and one seed always
 * produces the same run.
 *
 * Determinism: after each event the scheduler waits for one real setImmediate turn, by which time
 * Node has drained every microtask the event started (promise chains run to their next await on
 * a simulated timer, device or log). Nothing under simulation may wake on real I/O or real timers;
 * if it did, its continuation would land at an arbitrary virtual time.
 *
 * Crashes: timers are handed out per owner (`timersFor('A')`). `kill(owner)` drops the owner's
 * pending events and ignores what it schedules afterwards, so a crashed component's promise
 * chains simply never continue (they are garbage), as a killed process's would.
 */
import assert from 'node:assert/strict';
import type { Clock, TimerHandle, Timers } from '../store/runtime/index.js';

/** Virtual epoch: 2026-01-01T00:00:00Z, so LUTs and void times look like real ones. */
export const SIM_EPOCH_MS = Date.UTC(2026, 0, 1);
/** Events one run may execute before the scheduler declares a livelock. */
export const SIM_EVENTS_MAX = 20_000_000;

interface SimEvent {
  atMs: number;
  seq: number;
  owner: string;
  fn: () => void;
  cancelled: boolean;
}

/** A binary min-heap on (atMs, seq). */
class EventHeap {
  readonly #items: SimEvent[] = [];
  get size(): number {
    return this.#items.length;
  }
  push(e: SimEvent): void {
    const a = this.#items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }
  pop(): SimEvent | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}

class SimTimer implements TimerHandle {
  constructor(public event: SimEvent) {}
  unref(): void {}
}

const realImmediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Scheduler {
  #nowMs = SIM_EPOCH_MS;
  #seq = 0;
  #executed = 0;
  readonly #heap = new EventHeap();
  readonly #dead = new Set<string>();
  /** A rolling hash of (time, owner) of every executed event: equal runs have equal traces. */
  #trace = 0x811c9dc5;
  readonly clock: Clock = { nowMs: () => this.#nowMs };
  /** Receives every note with its virtual time (debugging a seed: `npm run sim -- --verbose`). */
  onNote: ((line: string) => void) | undefined;

  get nowMs(): number {
    return this.#nowMs;
  }
  get executed(): number {
    return this.#executed;
  }
  get traceHash(): string {
    return (this.#trace >>> 0).toString(16).padStart(8, '0');
  }

  /** Mixes a value into the trace (components record what they decided). */
  note(s: string): void {
    this.onNote?.(`${this.#nowMs - SIM_EPOCH_MS} ${s}`);
    let h = this.#trace;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    this.#trace = h;
  }

  /** Runs `fn` at now + delayMs on behalf of `owner`; ignored when the owner is dead. */
  at(owner: string, delayMs: number, fn: () => void): SimEvent {
    assert(Number.isFinite(delayMs), `delay ${delayMs}`);
    const e: SimEvent = { atMs: this.#nowMs + Math.max(0, Math.floor(delayMs)), seq: this.#seq++, owner, fn, cancelled: this.#dead.has(owner) };
    if (!e.cancelled) this.#heap.push(e);
    return e;
  }

  /** A promise resolved at now + delayMs (never, if the owner dies first). */
  sleep(owner: string, delayMs: number): Promise<void> {
    return new Promise((resolve) => void this.at(owner, delayMs, resolve));
  }

  /** Timers bound to one owner (a node, the receiver, the log). */
  timersFor(owner: string): Timers {
    const arm = (fn: () => void, ms: number, periodMs?: number): SimTimer => {
      const t = new SimTimer(undefined as unknown as SimEvent);
      const fire = (): void => {
        if (periodMs !== undefined) t.event = this.at(owner, Math.max(1, periodMs), fire);
        fn();
      };
      t.event = this.at(owner, ms, fire);
      return t;
    };
    const clear = (h: TimerHandle | undefined): void => {
      if (h instanceof SimTimer) h.event.cancelled = true;
    };
    return {
      setTimeout: (fn, ms) => arm(fn, ms),
      clearTimeout: clear,
      setInterval: (fn, ms) => arm(fn, ms, ms),
      clearInterval: clear,
      setImmediate: (fn) => void this.at(owner, 0, fn),
    };
  }

  /** Crash: drops every pending event of the owner and refuses new ones until `revive`. */
  kill(owner: string): void {
    this.#dead.add(owner);
  }
  revive(owner: string): void {
    this.#dead.delete(owner);
  }
  isDead(owner: string): boolean {
    return this.#dead.has(owner);
  }

  /** Runs events until virtual time passes `untilMs` or `done()` holds; returns whether it held. */
  async runUntil(untilMs: number, done: () => boolean = () => false): Promise<boolean> {
    await realImmediate();
    while (!done()) {
      const e = this.#heap.pop();
      if (!e) {
        if (untilMs < Number.MAX_SAFE_INTEGER) this.#nowMs = Math.max(this.#nowMs, untilMs);
        return done();
      }
      if (e.atMs > untilMs) {
        this.#heap.push(e);
        this.#nowMs = untilMs;
        return done();
      }
      if (e.cancelled || this.#dead.has(e.owner)) continue;
      assert(e.atMs >= this.#nowMs, 'time never goes backwards');
      this.#nowMs = e.atMs;
      this.#executed++;
      assert(this.#executed < SIM_EVENTS_MAX, `more than ${SIM_EVENTS_MAX} events: livelock?`);
      this.#trace = Math.imul(this.#trace ^ (e.atMs - SIM_EPOCH_MS), 0x01000193);
      e.fn();
      await realImmediate();
    }
    return true;
  }

  /** Runs for `ms` of virtual time. */
  async runFor(ms: number): Promise<void> {
    await this.runUntil(this.#nowMs + ms);
  }
}
