/**
 * Seeds for randomised tests: FERRY_TEST_SEED replays one; otherwise a fresh seed per run. The
 * seed is logged through t.log, which ava prints with a failure, together with the command that
 * replays it.
 */
import type { ExecutionContext } from 'ava';
import { seededRandom, type Random } from '../../store/runtime/index.js';

export function testRandom(t: ExecutionContext): Random & { seed: number } {
  const env = process.env['FERRY_TEST_SEED'];
  const seed = env !== undefined && env !== '' ? Number(env) : Math.floor(Math.random() * 2 ** 31);
  if (!Number.isInteger(seed)) throw new Error(`FERRY_TEST_SEED must be an integer, got "${env}"`);
  t.log(`seed ${seed} (replay: FERRY_TEST_SEED=${seed} npx ava <file> --match '${t.title}')`);
  return Object.assign(seededRandom(seed), { seed });
}

/** `n` pseudo-random bytes from `r`. */
export function randomBuffer(r: Random, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = r.int(256);
  return b;
}

/** A copy of `a` in a pseudo-random order (Fisher-Yates). */
export function shuffled<T>(r: Random, a: readonly T[]): T[] {
  const out = [...a];
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
