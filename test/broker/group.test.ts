import test from 'ava';
import type { Consumer } from 'kafkajs';
import { GroupCoordinator } from '../../broker/group/coordinator.js';
import { OffsetStore } from '../../broker/group/offsetStore.js';
import { broker, kafka, tempDir, waitFor } from './helpers.js';

test('two kafkajs consumers in one group while producing: every message processed and committed exactly once', async (t) => {
  const b = await broker(t);
  const k = kafka(b);
  const admin = k.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  await admin.createTopics({ topics: [{ topic: 'events', numPartitions: 4 }] });
  const producer = k.producer();
  await producer.connect();
  t.teardown(() => producer.disconnect());

  const processed = new Map<string, number>();
  const byMember = new Map<string, number>();
  const makeConsumer = async (name: string): Promise<Consumer> => {
    const c = k.consumer({ groupId: 'workers', sessionTimeout: 10_000, heartbeatInterval: 300, maxWaitTimeInMs: 100, rebalanceTimeout: 20_000 });
    await c.connect();
    await c.subscribe({ topic: 'events', fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        // Processing counts only once its commit is accepted (a fenced member's commit fails).
        await c.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
        const v = message.value!.toString();
        processed.set(v, (processed.get(v) ?? 0) + 1);
        byMember.set(name, (byMember.get(name) ?? 0) + 1);
      },
    });
    return c;
  };

  let produced = 0;
  const produce = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i += 20) {
      const messages = Array.from({ length: 20 }, (_, j) => ({ key: `k${produced + j}`, value: `m${produced + j}` }));
      produced += 20;
      await producer.send({ topic: 'events', messages, acks: -1 });
    }
  };

  const a = await makeConsumer('a');
  let aClosed = false;
  t.teardown(() => (aClosed ? undefined : a.disconnect()));
  await produce(200);
  await waitFor(() => processed.size >= 100, 15_000, 'member a to start consuming');
  const bConsumer = await makeConsumer('b');
  let bClosed = false;
  t.teardown(() => (bClosed ? undefined : bConsumer.disconnect()));
  await produce(200);
  await waitFor(() => (byMember.get('b') ?? 0) > 0 && processed.size >= 400, 20_000, 'both members consuming 400 messages');
  await bConsumer.disconnect();
  bClosed = true;
  await produce(200);
  await waitFor(() => processed.size >= 600, 20_000, '600 messages after b left');
  await a.disconnect();
  aClosed = true;

  t.is(processed.size, produced);
  t.deepEqual([...processed.values()].filter((n) => n !== 1), []);
  t.true((byMember.get('a') ?? 0) > 0 && (byMember.get('b') ?? 0) > 0);
  const committed = await admin.fetchOffsets({ groupId: 'workers', topics: ['events'] });
  const total = committed[0]!.partitions.reduce((n, p) => n + Number(p.offset), 0);
  t.is(total, produced);
  const groups = await admin.listGroups();
  t.true(groups.groups.some((g) => g.groupId === 'workers'));
  const described = await admin.describeGroups(['workers']);
  t.is(described.groups[0]!.state, 'Empty');
});

test('coordinator: a member that stops heartbeating is expired and the group rebalances', async (t) => {
  let now = 1_000_000;
  const offsets = new OffsetStore(tempDir(t));
  const c = new GroupCoordinator(offsets, { sessionTimeoutMsMin: 6000, now: () => now });
  t.teardown(() => {
    c.close();
    offsets.close();
  });
  const proto = [{ name: 'rr', metadata: Buffer.from('m') }];
  const join = (memberId: string) =>
    c.join({ groupId: 'g', sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, memberId, protocolType: 'consumer', protocols: proto }, 'cli', '/h');
  const j1 = await join('');
  t.is(j1.errorCode, 0);
  t.is(j1.leader, j1.memberId);
  t.is((await c.sync({ groupId: 'g', generationId: j1.generationId, memberId: j1.memberId, assignments: [{ memberId: j1.memberId, assignment: Buffer.from('A') }] })).assignment.toString(), 'A');
  // A second member joins: the first one must re-join (heartbeat says so) before the join completes.
  const j2p = join('');
  t.is(c.heartbeat('g', j1.memberId, j1.generationId), 27);
  const j1b = join(j1.memberId);
  const [r1, r2] = await Promise.all([j1b, j2p]);
  t.is(r1.generationId, j1.generationId + 1);
  t.is(r1.members.length, 2);
  t.is(r2.members.length, 0);
  // Commit during CompletingRebalance is refused; the follower's sync waits for the leader's.
  t.is(c.commitOffsets({ groupId: 'g', generationId: r1.generationId, memberId: r1.memberId, topics: [{ name: 't', partitions: [{ index: 0, offset: 5, metadata: null }] }] })[0]!.partitions[0]!.errorCode, 27);
  const s2 = c.sync({ groupId: 'g', generationId: r2.generationId, memberId: r2.memberId, assignments: [] });
  await c.sync({ groupId: 'g', generationId: r1.generationId, memberId: r1.memberId, assignments: [{ memberId: r2.memberId, assignment: Buffer.from('B') }] });
  t.is((await s2).assignment.toString(), 'B');
  // Member 2 goes silent past its session timeout; member 1 keeps heartbeating.
  now += 7000;
  t.is(c.heartbeat('g', r1.memberId, r1.generationId), 0);
  await waitFor(() => c.describe('g').members.length === 1, 3000, 'expiry of the silent member');
  t.is(c.heartbeat('g', r1.memberId, r1.generationId), 27);
  t.is(c.heartbeat('g', r2.memberId, r2.generationId), 25);
  const r3 = await join(r1.memberId);
  t.is(r3.generationId, r1.generationId + 1);
  t.is(r3.members.length, 1);
  // A stale generation is fenced.
  t.is(c.commitOffsets({ groupId: 'g', generationId: r1.generationId, memberId: r1.memberId, topics: [{ name: 't', partitions: [{ index: 0, offset: 5, metadata: null }] }] })[0]!.partitions[0]!.errorCode, 22);
});

test('committed offsets survive a broker restart', async (t) => {
  const first = await broker(t);
  const k1 = kafka(first);
  const admin = k1.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'p', numPartitions: 2 }] });
  const producer = k1.producer();
  await producer.connect();
  await producer.send({ topic: 'p', messages: [{ value: 'a', partition: 0 }, { value: 'b', partition: 0 }, { value: 'c', partition: 1 }] });
  await producer.disconnect();
  const consumer = k1.consumer({ groupId: 'keep', maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: 'p', fromBeginning: true });
  let seen = 0;
  await consumer.run({ autoCommitThreshold: 1, eachMessage: async () => void seen++ });
  await waitFor(() => seen === 3, 10_000, 'three messages');
  await consumer.disconnect();
  await admin.disconnect();
  await first.close();

  const second = await broker(t, { dataDir: first.dataDir });
  const admin2 = kafka(second).admin();
  await admin2.connect();
  t.teardown(() => admin2.disconnect());
  const got = await admin2.fetchOffsets({ groupId: 'keep', topics: ['p'] });
  t.deepEqual(got[0]!.partitions.map((p) => [p.partition, p.offset]).sort(), [[0, '2'], [1, '1']]);
  t.is(second.metrics().find((m) => m.name === 'ferry_broker_group_lag' && m.labels?.['group'] === 'keep' && m.labels['topic'] === 'p' && m.labels['partition'] === '0')?.value, 0);
});
