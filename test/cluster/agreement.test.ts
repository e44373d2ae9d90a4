/**
 * Membership agreement under partial partitions: the pure rule (agreeMembers) on topologies
 * where "every live peer" is not a clique, and real Heartbeats on the simulator's network and
 * virtual time (deterministic, seeded): A1 and A3 cannot see each other, both see A2; only a
 * clique becomes a cluster, every member uses its principal's list, and after the heal the three
 * agree again.
 */
import test from 'ava';
import { Heartbeat, agreeMembers, type AgreementPeer } from '../../store/cluster/heartbeat.js';
import { clusterKeyOf } from '../../store/cluster/partition-table.js';
import { seededRandom } from '../../store/runtime/index.js';
import { SimNetwork } from '../../sim/network.js';
import { Scheduler } from '../../sim/scheduler.js';

/** Live peers of `self` in a network given as undirected links, every node using `members`. */
function view(self: string, links: string[], members: Record<string, string[]> = {}): Map<string, AgreementPeer> {
  const adj = new Map<string, Set<string>>();
  for (const l of links) {
    const [a, b] = l.split('-') as [string, string];
    for (const [x, y] of [[a, b], [b, a]] as const) adj.set(x, (adj.get(x) ?? new Set()).add(y));
  }
  const out = new Map<string, AgreementPeer>();
  for (const id of adj.get(self) ?? []) {
    const m = members[id] ?? [id];
    out.set(id, { hears: adj.get(id) ?? new Set(), members: m, principal: [...m].sort()[0]! });
  }
  return out;
}

test('agreement rule: a full mesh is one cluster under the lowest id', (t) => {
  const links = ['A1-A2', 'A1-A3', 'A2-A3'];
  t.deepEqual(agreeMembers('A1', view('A1', links), ['A1']), ['A1', 'A2', 'A3'], 'A1 is the principal and proposes all three');
  // A2 and A3 follow A1 once it proposes; before that they wait, keeping what they had.
  t.deepEqual(agreeMembers('A2', view('A2', links), ['A2']), ['A2']);
  const proposed = { A1: ['A1', 'A2', 'A3'] };
  t.deepEqual(agreeMembers('A2', view('A2', links, proposed), ['A2']), ['A1', 'A2', 'A3']);
  t.deepEqual(agreeMembers('A3', view('A3', links, proposed), ['A3']), ['A1', 'A2', 'A3']);
});

test('agreement rule: a line A1-A2-A3 gives the clique [A1,A2] and A3 alone', (t) => {
  const links = ['A1-A2', 'A2-A3'];
  t.deepEqual(agreeMembers('A1', view('A1', links), ['A1', 'A2', 'A3']), ['A1', 'A2']);
  const m = { A1: ['A1', 'A2'], A2: ['A1', 'A2'] };
  t.deepEqual(agreeMembers('A2', view('A2', links, m), ['A1', 'A2', 'A3']), ['A1', 'A2']);
  // A3's clique would be [A2,A3], but A2 is in A1's cluster (A1 < A3): A3 forms its own.
  t.deepEqual(agreeMembers('A3', view('A3', links, m), ['A1', 'A2', 'A3']), ['A3']);
});

test('agreement rule: the middle node of a line is not the lowest: A2-A1-A3 gives [A1,A2] and [A3]', (t) => {
  const links = ['A1-A2', 'A1-A3'];
  t.deepEqual(agreeMembers('A1', view('A1', links), ['A1']), ['A1', 'A2']);
  const m = { A1: ['A1', 'A2'] };
  t.deepEqual(agreeMembers('A3', view('A3', links, m), ['A1', 'A2', 'A3']), ['A3']);
  t.deepEqual(agreeMembers('A2', view('A2', links, m), ['A2']), ['A1', 'A2']);
});

test('agreement rule: a newcomer heard by one member only does not split the cluster (migration test, a join)', (t) => {
  // A1 is the principal of [A1,A3,A4]; A2 starts and so far only A1 hears it (and it A1).
  const links = ['A1-A3', 'A1-A4', 'A3-A4', 'A1-A2'];
  const m = { A1: ['A1', 'A3', 'A4'], A3: ['A1', 'A3', 'A4'], A4: ['A1', 'A3', 'A4'] };
  t.deepEqual(agreeMembers('A1', view('A1', links, m), ['A1', 'A3', 'A4']), ['A1', 'A3', 'A4'], 'the principal keeps its members rather than taking the newcomer in their place');
  t.deepEqual(agreeMembers('A1', view('A1', [...links, 'A2-A3', 'A2-A4'], m), ['A1', 'A3', 'A4']), ['A1', 'A2', 'A3', 'A4'], 'once all hear it, it is taken');
});

test('agreement rule: a restarted node with the lowest id takes a cluster whole or waits (migration test, a restart)', (t) => {
  // A0 restarts and hears only A1 so far; A1 is in [A1,A2,A3]. Proposing [A0,A1] would take A1
  // away from its cluster for a few pulses, and both parts would take writes.
  const links = ['A1-A2', 'A1-A3', 'A2-A3', 'A0-A1'];
  const m = { A1: ['A1', 'A2', 'A3'], A2: ['A1', 'A2', 'A3'], A3: ['A1', 'A2', 'A3'] };
  t.deepEqual(agreeMembers('A0', view('A0', links, m), ['A0']), ['A0'], 'it waits alone');
  t.deepEqual(agreeMembers('A1', view('A1', links, m), ['A1', 'A2', 'A3']), ['A1', 'A2', 'A3'], 'the cluster stays as it is');
  t.deepEqual(agreeMembers('A0', view('A0', [...links, 'A0-A2', 'A0-A3'], m), ['A0']), ['A0', 'A1', 'A2', 'A3'], 'once it hears all of them, it proposes all four');
});

test('agreement rule: a peer whose list names members this node cannot take yet is not taken alone (simulator seed 414)', (t) => {
  // A2 restarted; A3's list still names it with A1, and A1 does not hear A2 yet.
  const links = ['A1-A3', 'A2-A3'];
  const m = { A1: ['A1', 'A3'], A3: ['A1', 'A2', 'A3'] };
  t.deepEqual(agreeMembers('A2', view('A2', links, m), ['A2']), ['A2'], 'A2 waits instead of proposing [A2,A3]');
});

test('agreement rule: a proposal naming a node this one cannot hear is not followed', (t) => {
  // A1 believes A2 and A3 hear each other (stale), and proposes all three; A3 does not hear A2.
  const live = new Map<string, AgreementPeer>([['A1', { hears: new Set(['A2', 'A3']), members: ['A1', 'A2', 'A3'], principal: 'A1' }]]);
  // A3 waits (A1 is its clique's principal) instead of joining a list with A2 in it.
  t.deepEqual(agreeMembers('A3', live, ['A3']), ['A3']);
});

/** Three real heartbeats on the simulated network; returns each node's member ids. */
async function partialPartition(seed: number): Promise<{ before: string[][]; during: string[][]; after: string[][]; keys: string[] }> {
  const sched = new Scheduler();
  const net = new SimNetwork(sched, seededRandom(seed));
  const ids = ['A1', 'A2', 'A3'];
  const hosts = ['n1', 'n2', 'n3'];
  const hbs = ids.map(
    (nodeId, i) =>
      new Heartbeat({
        nodeId,
        clusterName: 'sim',
        listen: { host: hosts[i]!, port: 1 },
        service: () => ({ host: hosts[i]!, port: 3000 }),
        seeds: hosts.filter((h) => h !== hosts[i]).map((host) => ({ host, port: 1 })),
        intervalMs: 150,
        timeoutCount: 10,
        transport: net.transportFor(hosts[i]!, hosts[i]!),
        clock: sched.clock,
        timers: sched.timersFor(hosts[i]!),
        random: seededRandom(seed + i),
      }),
  );
  const members = (): string[][] => hbs.map((h) => h.snapshot().members.map((m) => m.nodeId));
  const out = { before: [] as string[][], during: [] as string[][], after: [] as string[][], keys: [] as string[] };
  let done = false;
  void (async () => {
    for (const h of hbs) await h.start();
    await sched.sleep('test', 2000);
    out.before = members();
    net.cut(['n1', 'n3']);
    await sched.sleep('test', 5000);
    out.during = members();
    net.heal();
    await sched.sleep('test', 3000);
    out.after = members();
    out.keys = hbs.map((h) => h.snapshot().clusterKey);
    for (const h of hbs) await h.stop();
    done = true;
  })();
  await sched.runUntil(Number.MAX_SAFE_INTEGER, () => done);
  for (const h of hosts) sched.kill(h);
  return out;
}

for (const seed of [1, 2, 3]) {
  test(`heartbeats on the simulated network, seed ${seed}: a partial partition leaves cliques, and the heal one cluster`, async (t) => {
    const r = await partialPartition(seed);
    const all = ['A1', 'A2', 'A3'];
    t.deepEqual(r.before, [all, all, all], `seed ${seed}`);
    t.deepEqual(r.during, [['A1', 'A2'], ['A1', 'A2'], ['A3']], `seed ${seed}: A1 and A2 agree on their clique; A3 is alone`);
    t.deepEqual(r.after, [all, all, all], `seed ${seed}`);
    t.deepEqual(r.keys, all.map(() => clusterKeyOf(all.map((nodeId) => ({ nodeId })))), `seed ${seed}`);
  });
}

test('a node restarted faster than the node timeout leaves the member list and rejoins (so migrations refill it)', async (t) => {
  const sched = new Scheduler();
  const net = new SimNetwork(sched, seededRandom(7));
  const hosts = ['n1', 'n2', 'n3'];
  const make = (i: number, incarnation: number): Heartbeat =>
    new Heartbeat({
      nodeId: `A${i + 1}`,
      clusterName: 'sim',
      listen: { host: hosts[i]!, port: 1 },
      service: () => ({ host: hosts[i]!, port: 3000 }),
      seeds: hosts.filter((h) => h !== hosts[i]).map((host) => ({ host, port: 1 })),
      intervalMs: 150,
      timeoutCount: 10,
      transport: net.transportFor(hosts[i]!, `${hosts[i]}#${incarnation}`),
      clock: sched.clock,
      timers: sched.timersFor(`${hosts[i]}#${incarnation}`),
      random: seededRandom(100 * incarnation + i),
    });
  const hbs = [make(0, 1), make(1, 1), make(2, 1)];
  const seen: string[] = [];
  hbs[0]!.onChange((s) => seen.push(s.members.map((m) => m.nodeId).join(',')));
  let done = false;
  void (async () => {
    for (const h of hbs) await h.start();
    await sched.sleep('test', 2000);
    seen.length = 0;
    // A3 dies and is back 300 ms later, far inside the 1500 ms node timeout.
    sched.kill('n3#1');
    net.crashHost('n3');
    await sched.sleep('test', 300);
    hbs[2] = make(2, 2);
    await hbs[2].start();
    await sched.sleep('test', 2000);
    for (const h of hbs) await h.stop();
    done = true;
  })();
  await sched.runUntil(Number.MAX_SAFE_INTEGER, () => done);
  for (const o of ['n1#1', 'n2#1', 'n3#2']) sched.kill(o);
  t.true(seen.includes('A1,A2'), `A1 saw A3 leave: ${seen.join(' | ')}`);
  t.is(seen.at(-1), 'A1,A2,A3', `and rejoin: ${seen.join(' | ')}`);
});
