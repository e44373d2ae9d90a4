/**
 * Runtime seams: time, timers and randomness, passed into every component of store/, shipper/
 * and receiver/ (default: the real ones), so the simulator can run the system on virtual time
 * with one seed. Code outside this folder never calls Date.now, setTimeout, setInterval,
 * setImmediate or Math.random directly.
 */
import { systemClock, type Clock } from './clock.js';
import { seededRandom, systemRandom, type Random } from './random.js';
import { systemTimers, type Timers } from './timers.js';

export { systemClock, type Clock } from './clock.js';
export { systemTimers, sleep, yieldToLoop, type TimerHandle, type Timers } from './timers.js';
export { seededRandom, systemRandom, type Random } from './random.js';

/** The three seams together, as components take them. */
export interface Runtime {
  clock: Clock;
  timers: Timers;
  random: Random;
}

export const systemRuntime: Runtime = { clock: systemClock, timers: systemTimers, random: systemRandom };

/** A runtime with every part optional, filled from the real ones. */
export function runtimeOf(partial: Partial<Runtime> = {}): Runtime {
  return {
    clock: partial.clock ?? systemClock,
    timers: partial.timers ?? systemTimers,
    random: partial.random ?? systemRandom,
  };
}

/** The real runtime but with a seeded PRNG (tests that want replayable randomness). */
export function seededRuntime(seed: number): Runtime {
  return { clock: systemClock, timers: systemTimers, random: seededRandom(seed) };
}
