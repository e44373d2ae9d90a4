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

// ship-expirations on: with it off the known bug below fails most seeds (see there).
for (const seed of [100, 101, 102, 103, 104, 105, 106, 107]) {
  test.serial(`seed ${seed}: acknowledged writes survive and B converges to A under faults`, async (t) => {
    const r = await runSimulation({ seed, ops: OPS, shipExpirations: true });
    t.true(r.ok, report(r));
  });
}

// Known bug (XDR convergence), with ship-expirations off (the default): a short-TTL write that
// expires on A before the shipper reaches it (a Kafka outage or a slow log longer than the TTL;
// nsup now expires within about a second) is never shipped: the shipper reads the current
// version, finds an expiry tombstone and skips it. B keeps the older version, or nothing, while
// A holds the tombstone, so verify differs; when the older version has no TTL, B even serves a
// record A no longer has (seed 100: B holds a live generation 2, A expired generation 7). These
// flip to passing once the shipper ships an expiry tombstone whose expired write was itself never
// shipped (the tombstone keeps that write's generation and LUT, so B ends where its own expiry
// would have taken it).
for (const seed of [100, 104]) {
  test.serial.failing(`seed ${seed} (known bug: a write that expires before it is shipped is never shipped)`, async (t) => {
    const r = await runSimulation({ seed, ops: OPS });
    t.true(r.ok, report(r));
  });
}
