/**
 * Randomness through an interface. `seededRandom(seed)` is a small PRNG of our own (sfc32, Chris
 * Doty-Humphrey's Small Fast Counter, 32-bit variant, seeded through splitmix32) so a simulation
 * replays identically whatever the Node or library version. `systemRandom` is for production
 * paths that need no replay (jitter, ids).
 */
import assert from 'node:assert/strict';

export interface Random {
  /** Uniform 32-bit unsigned integer. */
  u32(): number;
  /** Uniform float in [0, 1). */
  float(): number;
  /** Uniform integer in [0, maxExclusive); maxExclusive in 1..2^32. */
  int(maxExclusive: number): number;
}

const TWO_POW_32 = 2 ** 32;

function fromU32(u32: () => number): Random {
  return {
    u32,
    float: () => u32() / TWO_POW_32,
    int: (maxExclusive) => {
      assert(Number.isInteger(maxExclusive) && maxExclusive >= 1 && maxExclusive <= TWO_POW_32, `int(${maxExclusive})`);
      return Math.floor((u32() / TWO_POW_32) * maxExclusive);
    },
  };
}

/** splitmix32: spreads a seed into well-mixed state words. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Deterministic PRNG from a 32-bit seed (other numbers are reduced modulo 2^32). */
export function seededRandom(seed: number): Random {
  assert(Number.isFinite(seed), `seed must be a finite number, got ${seed}`);
  const mix = splitmix32(Math.floor(seed) >>> 0);
  let a = mix();
  let b = mix();
  let c = mix();
  let counter = mix();
  const u32 = (): number => {
    const t = (((a + b) >>> 0) + counter) >>> 0;
    counter = (counter + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) u32(); // discard the first outputs, as sfc recommends
  return fromU32(u32);
}

export const systemRandom: Random = fromU32(() => Math.floor(Math.random() * TWO_POW_32) >>> 0);
