/**
 * Time source. Every component of store/, shipper/ and receiver/ reads the time through a Clock
 * it was handed, so tests and the simulator (sim/) control it. Only this file calls Date.now.
 */

export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch. */
  nowMs(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };
