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

for (const seed of [100, 101, 102, 103, 104, 105, 106, 107]) {
  test.serial(`seed ${seed}: acknowledged writes survive and B converges to A under faults`, async (t) => {
    const r = await runSimulation({ seed, ops: OPS });
    t.true(r.ok, report(r));
  });
}

for (const seed of [110, 111]) {
  test.serial(`seed ${seed} with ship-expirations: B converges to A`, async (t) => {
    const r = await runSimulation({ seed, ops: OPS, shipExpirations: true });
    t.true(r.ok, report(r));
  });
}

// Regression seeds of a bug the simulator found (fixed on main by 7455210): a short-TTL write that
// expired on A before the shipper reached it (a Kafka outage or a slow log longer than the TTL)
// was never shipped with ship-expirations off: the shipper read the current version, found an
// expiry tombstone and skipped it. B kept the older version (a live one, when it had no TTL), or
// nothing. With that check put back, seeds 100, 101, 106 (above), 114 and 115 fail. Seeds 20 and 134
// are the ones that first found it (on an earlier workload mix); they stay as regression seeds too.
for (const seed of [20, 114, 115, 134]) {
  test.serial(`seed ${seed} (regression: a write that expires before it is shipped still reaches B)`, async (t) => {
    const r = await runSimulation({ seed, ops: OPS });
    t.true(r.ok, report(r));
  });
}
