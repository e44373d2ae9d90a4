/**
 * Timers: setTimeout / setInterval / setImmediate through an interface, so the simulator can run
 * them on virtual time (a priority queue it pops in time order). Only this file touches the
 * global timer functions.
 */

/** An armed timer. `unref` lets the process exit while it is armed (no-op under simulation). */
export interface TimerHandle {
  unref(): void;
}

export interface Timers {
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(fn: () => void, periodMs: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
  /** Runs `fn` after pending I/O callbacks (a yield to the event loop). */
  setImmediate(fn: () => void): void;
}

export const systemTimers: Timers = {
  setTimeout: (fn, delayMs) => setTimeout(fn, delayMs),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout | undefined),
  setInterval: (fn, periodMs) => setInterval(fn, periodMs),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout | undefined),
  setImmediate: (fn) => void setImmediate(fn),
};

/** Resolves after `ms` on the given timers. */
export function sleep(timers: Timers, ms: number): Promise<void> {
  return new Promise((resolve) => void timers.setTimeout(resolve, ms));
}

/** Resolves on the next turn of the event loop (lets I/O and other tasks run). */
export function yieldToLoop(timers: Timers): Promise<void> {
  return new Promise((resolve) => timers.setImmediate(resolve));
}
