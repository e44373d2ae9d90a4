/**
 * The cluster simulation (sim/cluster-run.ts) on a fixed set of seeds: three nodes of one site,
 * each the real node assembly, under crashes, clean restarts, partitions (also partial), loss
 * and reordering, then the checkers (one member list and key on every node, no migrations left,
 * every replica equal to its master, the ledger of acknowledged commands against the masters).
 * A failure prints the seed's failures and the command that replays it.
 *
 * Seeds marked `test.failing` reproduce bugs of the migrations being rebuilt (partition versions,
 * acting master, delta migration): they turn into real failures once those land, and then
 * belong among the passing seeds.
 */
import test from 'ava';
import { runClusterSimulation, type ClusterSimOptions } from '../../sim/cluster-run.js';
import type { SimResult } from '../../sim/run.js';

const OPS = 300;

function report(r: SimResult, o: ClusterSimOptions): string {
  return `seed ${r.seed}: ${r.failures.slice(0, 8).join('\n')}\nreplay: npm run sim -- --seed ${r.seed} --ops ${o.ops} --nodes ${o.nodes ?? 3}${o.scenario ? ` --scenario ${o.scenario}` : ''}`;
}

test.serial('cluster: the same seed replays identically (trace hash and summary)', async (t) => {
  const a = await runClusterSimulation({ seed: 9, ops: 120 });
  const b = await runClusterSimulation({ seed: 9, ops: 120 });
  t.is(a.traceHash, b.traceHash);
  t.deepEqual(a.summary, b.summary);
  const c = await runClusterSimulation({ seed: 10, ops: 120 });
  t.not(c.traceHash, a.traceHash, 'the trace depends on the seed');
});

test.serial('cluster: a partial partition (A1 and A3 cannot see each other) leaves only cliques as clusters, then heals', async (t) => {
  const o: ClusterSimOptions = { seed: 3, ops: 500, scenario: 'partial-partition' };
  const r = await runClusterSimulation(o);
  t.true(r.ok, report(r, o));
});

// 18 failed before acting masters (a returning node mastered before it was filled).
for (const seed of [2, 3, 7, 9, 11, 18]) {
  test.serial(`cluster seed ${seed}: acknowledged writes survive and replicas converge under faults`, async (t) => {
    const o: ClusterSimOptions = { seed, ops: OPS };
    const r = await runClusterSimulation(o);
    t.true(r.ok, report(r, o));
  });
}

test.serial('cluster with XDR, seed 21: site A (3 nodes) ships through Kafka and the receiver to site B (3 nodes); B ends equal to A', async (t) => {
  const o: ClusterSimOptions = { seed: 21, ops: OPS, xdr: true };
  const r = await runClusterSimulation(o);
  t.true(r.ok, `${report(r, o)} --xdr`);
  t.true(Number(r.summary.produced) > 0, 'the shippers produced');
});

const KNOWN: Array<[number, string]> = [
  [1, 'a replica write lost in a partition shorter than the node timeout is never retried or repaired: the replica stays behind'],
  [10, 'replica writes lost in a loss window after the split healed are never retried or repaired (as seed 1; the split itself is merged by duplicate resolution now)'],
];
// `npm run sim -- --nodes 3 --xdr --seed 1 --seeds 20` (400 ops) also fails seeds 1, 8 and 10 on
// the same class at site A (1 and 10 are pinned above, 8 passes at 300 ops); 15 is the one that
// fails at 300 ops, at site B: the receiver's applies are replica writes there too.
test.serial.failing('cluster with XDR, seed 15 (known bug: a replica write at site B lost in a loss window is never retried or repaired, as seed 1: B replica != master)', async (t) => {
  const o: ClusterSimOptions = { seed: 15, ops: OPS, xdr: true };
  const r = await runClusterSimulation(o);
  t.true(r.ok, `${report(r, o)} --xdr`);
});

for (const [seed, bug] of KNOWN) {
  test.serial.failing(`cluster seed ${seed} (known bug: ${bug})`, async (t) => {
    const o: ClusterSimOptions = { seed, ops: OPS };
    const r = await runClusterSimulation(o);
    t.true(r.ok, report(r, o));
  });
}
