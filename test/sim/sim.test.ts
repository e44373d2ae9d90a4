/**
 * The whole-system simulation (sim/run.ts) on a fixed set of seeds: site A with a shipper, the
 * simulated Kafka log, the receiver and site B, with crashes, outages and network faults, then
 * the checkers (acknowledged writes on A, B equal to A, nothing threw). A failure prints the
 * seed's failures and the command that replays it.
 */
import test from 'ava';
import { runSimulation, type SimResult } from '../../sim/run.js';

const OPS = 300;

function report(r: SimResult, ops = OPS): string {
  return `seed ${r.seed}: ${r.failures.slice(0, 8).join('\n')}\nreplay: npm run sim -- --seed ${r.seed} --ops ${ops}`;
}

test.serial('the same seed replays identically (trace hash and summary)', async (t) => {
  const a = await runSimulation({ seed: 42, ops: 150 });
  const b = await runSimulation({ seed: 42, ops: 150 });
  t.is(a.traceHash, b.traceHash);
  t.deepEqual(a.summary, b.summary);
  const c = await runSimulation({ seed: 43, ops: 150 });
  t.not(c.traceHash, a.traceHash, 'the trace depends on the seed');
});

for (const seed of [100, 101, 102, 103, 104, 106, 107]) {
  test.serial(`seed ${seed}: acknowledged writes survive and B converges to A under faults`, async (t) => {
    const r = await runSimulation({ seed, ops: OPS });
    t.true(r.ok, report(r));
  });
}

// Known bug (XDR convergence): a short-TTL write that expires on A before the shipper reaches it
// (here: during a Kafka outage longer than the TTL) is never shipped, because the shipper reads
// the current version, finds an expiry tombstone and skips it (ship-expirations is off). B keeps
// the older version, or nothing, while A holds the tombstone: verify differs. With no TTL on the
// older version B even serves a record A no longer has. These flip to passing once the shipper
// ships an expiry tombstone whose expired write was itself never shipped.
// Seed 105: B keeps a live generation 1 that A expired (as generation 4) during an outage.
// Seeds 114 and 134 (400 ops): B misses the tombstone or holds an older one.
for (const [seed, ops] of [[105, OPS], [114, 400], [134, 400]] as const) {
  test.serial.failing(`seed ${seed} (known bug: a write that expires before it is shipped is never shipped)`, async (t) => {
    const r = await runSimulation({ seed, ops });
    t.true(r.ok, report(r, ops));
  });
}
