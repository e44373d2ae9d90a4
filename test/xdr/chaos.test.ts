/**
 * Chaos: kill -9 and restart the receiver, the broker, the source node and the destination node under a mixed load from
 * the official client, then require `ferry verify` EQUAL and every acknowledged write present.
 * The seed is printed; FERRY_CHAOS_SEED replays a schedule.
 */
import test from 'ava';
import { formatChaos, runChaos } from './chaos-harness.js';

test('chaos: kills of receiver, broker, source and destination node under load; the sites converge and nothing acknowledged is lost', async (t) => {
  const seed = Number(process.env.FERRY_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.log(`seed ${seed} (replay: FERRY_CHAOS_SEED=${seed} npx ava test/xdr/chaos.test.ts)`);
  const r = await runChaos({
    seed,
    seconds: 12,
    keys: 400,
    ttlKeys: 100,
    concurrency: 8,
    faultGapMs: [600, 1500],
    downMs: [200, 1000],
    convergeTimeoutMs: 30_000,
    log: (line) => t.log(line),
  });
  t.log(formatChaos(r));
  if (r.verifyExit !== 0) t.log(r.verifyOutput);
  t.true(r.faults.receiver > 0 && r.faults.broker > 0 && r.faults.source > 0 && r.faults.destination > 0, `seed ${seed}: each kind of fault was injected`);
  t.true(r.writesAcknowledged > 0, `seed ${seed}: writes were acknowledged`);
  t.deepEqual(r.lostAtSource, [], `seed ${seed}: acknowledged writes missing at A`);
  t.is(r.verifyExit, 0, `seed ${seed}: ferry verify:\n${r.verifyOutput}`);
  t.deepEqual(r.binDifferences, [], `seed ${seed}: bins or void times differ`);
});
