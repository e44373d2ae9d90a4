/**
 * The cluster simulation (sim/cluster-run.ts) on a fixed set of seeds: three nodes of one site,
 * each the real node assembly, under crashes, clean restarts, partitions (also partial), loss
 * and reordering, then the checkers (one member list and key on every node, no migrations left,
 * every replica equal to its master, the ledger of acknowledged commands against the masters) and,
 * sampled while it runs, no node over 1.1 x its share (sim/balance-checker.ts).
 * A failure prints the seed's failures and the command that replays it.
 *
 * A seed that reproduced a bug stays here as a regression test once the bug is fixed, with a
 * note on what it found (a known bug not fixed yet would be marked `test.failing`; none is now).
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

for (const seed of [2, 3, 7, 9, 11]) {
  test.serial(`cluster seed ${seed}: acknowledged writes survive and replicas converge under faults`, async (t) => {
    const o: ClusterSimOptions = { seed, ops: OPS };
    const r = await runClusterSimulation(o);
    t.true(r.ok, report(r, o));
  });
}

test.serial('cluster: the no-balloon checker runs in every seed above and reports a node over its factor', async (t) => {
  // Every run checks that no node stores more than 1.1 x its largest share among the tables of
  // the rebalance in progress (sim/balance-checker.ts), across the crashes mid-migration the
  // seeds inject. Here seed 4 (a crash) passes it, sampled at stable points and between them;
  // with a factor of 0.5 the same run must be reported (every node holds its whole share).
  const o: ClusterSimOptions = { seed: 4, ops: 200 };
  const r = await runClusterSimulation(o);
  t.true(r.ok, report(r, o));
  t.true(Number(r.summary['balanceSamples']) > 5 && Number(r.summary['balanceStablePoints']) > 0, JSON.stringify(r.summary));
  t.true(Number(r.summary['crashes'] ?? 0) + Number(r.summary['cleanRestarts'] ?? 0) > 0, 'the seed injects a crash or a restart');
  const strict = await runClusterSimulation({ ...o, balanceFactor: 0.5 });
  t.true(strict.failures.some((f) => f.startsWith('balloon:')), strict.failures.slice(0, 3).join('\n'));
});

test.serial('cluster with XDR, seed 21: site A (3 nodes) ships through Kafka and the receiver to site B (3 nodes); B ends equal to A', async (t) => {
  const o: ClusterSimOptions = { seed: 21, ops: OPS, xdr: true };
  const r = await runClusterSimulation(o);
  t.true(r.ok, `${report(r, o)} --xdr`);
  t.true(Number(r.summary.produced) > 0, 'the shippers produced');
});

// At site B the receiver's applies are replica writes too: a loss window there left B's replica
// behind its master (seed 15) until replica writes were retransmitted.
test.serial('cluster with XDR, seed 15: replica writes at site B lost in a loss window are retransmitted: B replicas equal their masters', async (t) => {
  const o: ClusterSimOptions = { seed: 15, ops: OPS, xdr: true };
  const r = await runClusterSimulation(o);
  t.true(r.ok, `${report(r, o)} --xdr`);
});

// Both lost replica writes on the fabric (a partition shorter than the node timeout; a loss
// window after a split healed) and left a replica behind its master before replica writes were
// retransmitted until acknowledged (store/cluster/replica-write.ts).
for (const [seed, what] of [
  [1, 'a replica write lost in a partition shorter than the node timeout is retransmitted: no replica stays behind'],
  [10, 'replica writes lost in a loss window after a split healed are retransmitted: no replica stays behind'],
] as const) {
  test.serial(`cluster seed ${seed}: ${what}`, async (t) => {
    const o: ClusterSimOptions = { seed, ops: OPS };
    const r = await runClusterSimulation(o);
    t.true(r.ok, report(r, o));
  });
}

// Seed 18 (and 17 with XDR, below) reproduced a bug that is NOT fixed: while nodes disagree on
// membership after a restart (a flap), two of them master one partition and acknowledge the same
// generation of a key, one write is lost (no duplicate resolution at transaction time,
// docs/cluster.md "Not done yet"). Since replica writes and proxied commands are resent only
// when their connection changed or after 1 s, the schedule of seed 18 changed and it no
// longer hits it: it runs as an ordinary seed. Seed 27 (found by `npm run sim -- --nodes 3
// --seed 1 --seeds 40 --ops 300`, the one failure of 40) saw the same, and passes since a client
// write that ran after its node stopped being the partition's working master (it waited on the
// record lock through a hand-off) is sent to the working master and every holder instead of
// staying on that node alone (replica-write.ts; 40 of 40 seeds pass). Not traced which of the two
// the seed hit: the class (two working masters while membership flaps) is not fixed.
test.serial('cluster seed 27: acknowledged writes survive crashes and restarts (a write run after a hand-off reaches the working master)', async (t) => {
  const o: ClusterSimOptions = { seed: 27, ops: OPS };
  const r = await runClusterSimulation(o);
  t.true(r.ok, report(r, o));
});

// Seed 101 (found by `npm run sim -- --nodes 3 --seed 100 --seeds 40 --ops 300`, the one failure
// of 40): A2, restarted, formed [A2,A3] for 150 ms while A3 still used [A1,A3]; A2 served key k12
// as working master and acknowledged a put (gen 1, replicated to A3). When all three re-formed,
// A1 (full copy of the other lineage) served k12 before A2's copy had merged into it, and
// acknowledged an incr with gen 1 too: the put was lost. Fixed by duplicate resolution at
// transaction time (store/cluster/dup-res.ts): the working master first asks the copies not
// merged yet for their version of the key; the incr now gets gen 2. 40 of 40 pass.
test.serial('cluster seed 101: a write during a merge first takes the better version from a copy not merged yet (duplicate resolution)', async (t) => {
  const o: ClusterSimOptions = { seed: 101, ops: OPS };
  const r = await runClusterSimulation(o);
  t.true(r.ok, report(r, o));
});

// Seed 414 at 400 ops (found by `npm run sim -- --nodes 3 --seed 400 --seeds 30`): A2, restarted,
// heard A3 (whose list, for a moment, named A2) but not yet A1, proposed [A2,A3], and A3 followed
// it away from A1: two clusters for 150 ms, and two incrs of k30 acknowledged with gen 1. Fixed in
// the agreement rule (heartbeat.ts): a peer comes with every member its list names, or the node
// waits; the class seed 101 also hit. Fails on 3f413ac, passes since.
test.serial('cluster seed 414: a restarted node does not take one member away from its cluster (the agreement rule)', async (t) => {
  const o: ClusterSimOptions = { seed: 414, ops: 400 };
  const r = await runClusterSimulation(o);
  t.true(r.ok, report(r, o));
});

// The short-split scenario (sim/cluster-run.ts): 4 nodes split 2 | 2 on slow links and heal
// before either side's fills finish. Both sides had kept the lineage of the whole cluster (a
// node's lineage advanced only when its round's migrations finished), so at the re-form every
// FULL copy counted as one lineage and nothing merged the writes each side had acknowledged: a
// master and its replica stayed different (`--scenario short-split --seeds 20`: seeds 1, 11, 13
// and 17 failed). Fixed in balance.ts: a round that lacks a member of the previous one forks the
// lineage of every node in it, alike on one side and differently on the other, so the re-formed
// plan merges them; 20 of 20 pass (and 10 of 10 with 3 nodes).
for (const seed of [1, 11]) {
  test.serial(`cluster short split, seed ${seed}: a split healed before its fills finished merges both sides' writes (lineage fork)`, async (t) => {
    const o: ClusterSimOptions = { seed, ops: 500, nodes: 4, scenario: 'short-split' };
    const r = await runClusterSimulation(o);
    t.true(r.ok, report(r, o));
    t.true(Number(r.summary['shortSplitOwedAtHeal']) > 0, 'the heal came while migrations were still owed');
  });
}

test.serial('cluster seed 18: acknowledged writes survive and replicas converge under faults (a restart and a membership flap)', async (t) => {
  const o: ClusterSimOptions = { seed: 18, ops: OPS };
  const r = await runClusterSimulation(o);
  t.true(r.ok, report(r, o));
});

// Seed 18 with XDR failed the no-balloon checker (A3 stores 110 records against a largest share
// of 74 + 16): a checker bug, not a balloon. Samples come only when the driver wakes, and none fell
// in the 1.3 s (6764-8101 virtual ms) that A3 spent in a 2-node cluster [A2,A3], where it held
// every partition (its share: every record); the checker compared what it still held then
// against the 3-node table only. Every table a node switches to is recorded now
// (BalanceChecker.noteTable, from the nodes' table changes; the trace is unchanged, a4aa9834);
// `npm run sim -- --nodes 3 --xdr --seed 1 --seeds 20 --ops 300`: 20 of 20 pass.
test.serial('cluster with XDR, seed 18: a table used only between two samples counts in the no-balloon share (a short 2-node split)', async (t) => {
  const o: ClusterSimOptions = { seed: 18, ops: OPS, xdr: true };
  const r = await runClusterSimulation(o);
  t.true(r.ok, `${report(r, o)} --xdr`);
});

// `npm run sim -- --nodes 3 --xdr --seed 1 --seeds 20` (05:20 UTC, after replica-write
// retransmission): 19 of 20 pass; 17 fails the ledger, the same with shipping by the table's
// master (so not the shipper's doing): A3 is cut off and A2 restarted; from 4504 ms A1 sees
// [A1,A2] while A2 does not yet (until 4652 ms), and in that window both acknowledge a write of
// key "hot" with gen 50 (incr at 4563 ms, delete at 4583 ms). Traced with
// `npm run sim -- --seed 17 --ops 300 --nodes 3 --xdr --verbose`; the class of seed 18.
// Since the shipper reads only the partitions whose log grew (05:30 UTC) the schedule differs and
// seed 17 no longer reaches that window (`--nodes 3 --xdr --seed 1 --seeds 30`: 30 of 30 pass):
// it runs as an ordinary seed; the bug itself is not fixed (no seed of 40 pins it now).
test.serial('cluster with XDR, seed 17: site A ships to B under faults; B ends equal to A', async (t) => {
  const o: ClusterSimOptions = { seed: 17, ops: OPS, xdr: true };
  const r = await runClusterSimulation(o);
  t.true(r.ok, `${report(r, o)} --xdr`);
});
