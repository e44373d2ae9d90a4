import test from 'ava';
import { clusterKeyOf, computePartitionTable, PartitionTableError, type Member } from '../../store/cluster/partition-table.js';
import { PARTITION_COUNT } from '../../store/types.js';

/** xorshift32: the ids are random but replayable from the printed seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}
const randomIds = (rnd: () => number, n: number): string[] => {
  const ids = new Set<string>();
  while (ids.size < n) ids.add(((rnd() % 0xffff) + 1).toString(16).toUpperCase() + rnd().toString(16).toUpperCase().padStart(8, '0'));
  return [...ids];
};
const members = (ids: string[]): Member[] => ids.map((nodeId) => ({ nodeId }));

test('every node computes the same table whatever order it lists the members in', (t) => {
  const ids = ['BB9010011AC4202', 'BB9020011AC4202', 'BB9030011AC4202', 'A1'];
  const a = computePartitionTable(members(ids), 2);
  const b = computePartitionTable(members([...ids].reverse()), 2);
  t.is(a.clusterKey, b.clusterKey);
  for (let pid = 0; pid < PARTITION_COUNT; pid++) {
    const sa = a.succession(pid).map((i) => a.members[i]!.nodeId);
    t.deepEqual(sa, b.succession(pid).map((i) => b.members[i]!.nodeId));
    t.is(new Set(sa).size, ids.length, 'a succession lists every member once');
    t.is(a.nodeAt(pid, 0), sa[0]!);
    t.is(a.positionOf(sa[1]!, pid), 1);
  }
});

test('masters and replicas are spread within 20% of an even share for 3..10 nodes', (t) => {
  const seed = Date.now() % 1_000_000;
  t.log(`seed ${seed}`);
  const rnd = prng(seed);
  for (let round = 0; round < 5; round++) {
    for (let n = 3; n <= 10; n++) {
      const ids = randomIds(rnd, n);
      const table = computePartitionTable(members(ids), 2);
      const share = PARTITION_COUNT / n;
      let masters = 0;
      for (const c of table.counts()) {
        masters += c.master;
        t.true(Math.abs(c.master - share) <= 0.2 * share, `seed ${seed} n=${n} ${c.nodeId} masters ${c.master}, share ${share.toFixed(0)}`);
        t.true(Math.abs(c.replica - share) <= 0.2 * share, `seed ${seed} n=${n} ${c.nodeId} replicas ${c.replica}`);
      }
      t.is(masters, PARTITION_COUNT);
    }
  }
});

test('a node leaving moves only the partitions it held; the others keep their order', (t) => {
  const ids = randomIds(prng(7), 5);
  const before = computePartitionTable(members(ids), 2);
  const gone = ids[2]!;
  const after = computePartitionTable(members(ids.filter((id) => id !== gone)), 2);
  t.not(before.clusterKey, after.clusterKey);
  let changedMasters = 0;
  for (let pid = 0; pid < PARTITION_COUNT; pid++) {
    const b = before.succession(pid).map((i) => before.members[i]!.nodeId).filter((id) => id !== gone);
    t.deepEqual(after.succession(pid).map((i) => after.members[i]!.nodeId), b);
    if (before.nodeAt(pid, 0) !== after.nodeAt(pid, 0)) {
      changedMasters++;
      t.is(before.nodeAt(pid, 0), gone);
      t.is(after.nodeAt(pid, 0), before.nodeAt(pid, 1), 'the first replica takes over');
    }
  }
  t.is(changedMasters, before.counts().find((c) => c.nodeId === gone)!.master);
});

test('with racks, the replicas of a partition are on distinct racks', (t) => {
  const ids = randomIds(prng(11), 6);
  const racked = ids.map((nodeId, i) => ({ nodeId, rackId: i % 3 }));
  for (const rf of [2, 3]) {
    const table = computePartitionTable(racked, rf);
    for (let pid = 0; pid < PARTITION_COUNT; pid++) {
      const racks = table.succession(pid).slice(0, rf).map((i) => table.members[i]!.rackId);
      t.is(new Set(racks).size, rf, `pid ${pid} rf ${rf}`);
    }
  }
  // Two racks, rf 3: both racks hold a copy, the third copy goes by score.
  const two = computePartitionTable(ids.map((nodeId, i) => ({ nodeId, rackId: i % 2 })), 3);
  for (let pid = 0; pid < PARTITION_COUNT; pid++) {
    t.is(new Set(two.succession(pid).slice(0, 3).map((i) => two.members[i]!.rackId)).size, 2);
  }
  t.not(clusterKeyOf(racked), clusterKeyOf(members(ids)), 'racks are part of the key');
});

test('replication factor is capped by the cluster size; one node owns everything', (t) => {
  const one = computePartitionTable([{ nodeId: 'A' }], 2);
  t.is(one.replicationFactor, 1);
  t.deepEqual(one.counts(), [{ nodeId: 'A', master: PARTITION_COUNT, replica: 0 }]);
  const three = computePartitionTable(members(['A', 'B', 'C']), 5);
  t.is(three.replicationFactor, 3);
  t.is(three.counts().reduce((s, c) => s + c.replica, 0), 2 * PARTITION_COUNT);
});

test('bad member lists are refused with a clear error', (t) => {
  t.throws(() => computePartitionTable([], 1), { instanceOf: PartitionTableError, message: /at least one member/ });
  t.throws(() => computePartitionTable(members(['A', 'A']), 1), { message: /duplicate node id A/ });
  t.throws(() => computePartitionTable(members(['xyz']), 1), { message: /hex digits/ });
  t.throws(() => computePartitionTable(members(['A']), 0), { message: /replication factor/ });
  t.throws(() => computePartitionTable([{ nodeId: 'A', rackId: -1 }], 1), { message: /rack id/ });
});

test('a quiesced member goes to the end of every succession; the others keep their order without it', (t) => {
  const ids = ['BB9010011AC4202', 'BB9020011AC4202', 'BB9030011AC4202', 'A1'];
  const q = 'BB9020011AC4202';
  const plain = computePartitionTable(members(ids), 2);
  const quiesced = computePartitionTable(ids.map((nodeId) => (nodeId === q ? { nodeId, quiesced: true as const } : { nodeId })), 2);
  const without = computePartitionTable(members(ids.filter((id) => id !== q)), 2);
  t.not(quiesced.clusterKey, plain.clusterKey, 'the flag changes the key (a new rebalance round)');
  t.is(quiesced.replicationFactor, 2);
  let moved = 0;
  for (let pid = 0; pid < PARTITION_COUNT; pid++) {
    const row = quiesced.succession(pid).map((i) => quiesced.members[i]!.nodeId);
    t.is(row[row.length - 1], q);
    t.deepEqual(row.slice(0, -1), without.succession(pid).map((i) => without.members[i]!.nodeId));
    if (plain.positionOf(q, pid) < 2) moved++;
  }
  t.true(moved > 0);
  t.is(quiesced.counts().find((c) => c.nodeId === q)?.master, 0);
  t.is(quiesced.counts().find((c) => c.nodeId === q)?.replica, 0);
  const all = computePartitionTable(ids.map((nodeId) => ({ nodeId, quiesced: true as const })), 2);
  for (let pid = 0; pid < PARTITION_COUNT; pid += 97) t.deepEqual(all.succession(pid), plain.succession(pid), 'all quiesced: the flag is ignored');
});

test('with racks, a quiesced member is still moved to the end and replicas use distinct racks among the others', (t) => {
  const ms: Member[] = [
    { nodeId: 'A1', rackId: 1 },
    { nodeId: 'A2', rackId: 1 },
    { nodeId: 'B1', rackId: 2, quiesced: true },
    { nodeId: 'B2', rackId: 2 },
  ];
  const table = computePartitionTable(ms, 2);
  for (let pid = 0; pid < PARTITION_COUNT; pid++) {
    t.is(table.nodeAt(pid, 3), 'B1');
    const racks = new Set([0, 1].map((p) => ms.find((m) => m.nodeId === table.nodeAt(pid, p))!.rackId));
    t.is(racks.size, 2);
  }
});
