/**
 * `npm run chaos -- --seconds N [--seed S] [--keys K]`: a longer XDR chaos run with real processes
 * (test/xdr/chaos-harness.ts). Prints writes acknowledged, faults injected, seconds to converge
 * after the last fault (goal <= 10 s) and differences left (goal 0). Exit 1 when the sites did not
 * converge or an acknowledged write is missing.
 */
import { formatChaos, runChaos } from '../test/xdr/chaos-harness.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) {
    process.stderr.write(`chaos: --${name} needs a non-negative integer, got "${process.argv[i + 1] ?? ''}"\n`);
    process.exit(2);
  }
  return v;
}

const seconds = arg('seconds', 60);
const seed = arg('seed', Math.floor(Math.random() * 2 ** 31));
const keys = arg('keys', 2000);
process.stdout.write(`chaos: seed ${seed}, ${seconds} s (replay: npm run chaos -- --seconds ${seconds} --seed ${seed})\n`);
const r = await runChaos({
  seed,
  seconds,
  keys,
  ttlKeys: Math.max(1, Math.floor(keys / 4)),
  concurrency: 16,
  faultGapMs: [2000, 6000],
  downMs: [200, 3000],
  convergeTimeoutMs: 120_000,
  log: (line) => process.stdout.write(`${line}\n`),
});
process.stdout.write(`${formatChaos(r)}\n`);
if (r.verifyExit !== 0) process.stdout.write(r.verifyOutput);
for (const l of [...r.lostAtSource, ...r.binDifferences].slice(0, 20)) process.stdout.write(`  ${l}\n`);
process.exit(r.verifyExit === 0 && r.lostAtSource.length === 0 && r.binDifferences.length === 0 ? 0 : 1);
