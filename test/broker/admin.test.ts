import test from 'ava';
import { broker, kafka, waitFor } from './helpers.js';

test('kafkajs admin and producer: auto-create with the default partition count, offsets by timestamp, describe configs, delete', async (t) => {
  const b = await broker(t, { defaultPartitions: 3 });
  const k = kafka(b, 'admin-test', 1);
  const admin = k.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  const producer = k.producer();
  await producer.connect();
  t.teardown(() => producer.disconnect());

  // Metadata with allow_auto_topic_creation creates the topic with the configured default.
  const base = Date.now() - 60_000;
  for (let i = 0; i < 5; i++) {
    await producer.send({ topic: 'auto', messages: [{ value: `m${i}`, partition: 0, timestamp: String(base + i * 1000) }] });
  }
  const meta = await admin.fetchTopicMetadata({ topics: ['auto'] });
  t.is(meta.topics[0]!.partitions.length, 3);

  const at = async (ts: number) => (await admin.fetchTopicOffsetsByTimestamp('auto', ts)).find((p) => p.partition === 0)!.offset;
  t.is(await at(base), '0');
  t.is(await at(base + 2500), '3');
  t.is(await at(base + 4000), '4');
  // Later than every record: kafkajs substitutes the high watermark for -1.
  t.is(await at(base + 10_000), '5');
  const offs = await admin.fetchTopicOffsets('auto');
  t.deepEqual(offs.find((p) => p.partition === 0), { partition: 0, offset: '5', high: '5', low: '0' });

  t.true(await admin.createTopics({ topics: [{ topic: 'cfg', numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] }));
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: 'cfg' }] });
  const entries = described.resources[0]!.configEntries;
  t.is(entries.find((e) => e.configName === 'retention.ms')!.configValue, '3600000');
  t.truthy(entries.find((e) => e.configName === 'segment.bytes'));

  await t.throwsAsync(admin.createTopics({ topics: [{ topic: 'bad/name', numPartitions: 1 }] }));
  await t.throwsAsync(admin.createTopics({ topics: [{ topic: 'rf', numPartitions: 1, replicationFactor: 3 }] }));
  await t.throwsAsync(admin.createTopics({ topics: [{ topic: 'compact', configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] }));

  await admin.deleteTopics({ topics: ['cfg'] });
  t.deepEqual((await admin.listTopics()).sort(), ['auto']);
  await t.throwsAsync(admin.deleteTopics({ topics: ['never-was'] }));
});

test('kafkajs idempotent producer: InitProducerId, sequences accepted, messages stored once', async (t) => {
  const b = await broker(t);
  const k = kafka(b);
  const producer = k.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  for (let i = 0; i < 5; i++) {
    const res = await producer.send({ topic: 'idem', messages: Array.from({ length: 10 }, (_, j) => ({ value: `${i}-${j}` })) });
    t.is(res[0]!.baseOffset, String(i * 10));
  }
  const admin = k.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  t.is((await admin.fetchTopicOffsets('idem'))[0]!.high, '50');
});

test('retention through topic configs: old segments deleted, low watermark moves, a consumer from the beginning starts there', async (t) => {
  const b = await broker(t);
  const k = kafka(b, 'retention', 1);
  const admin = k.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  await admin.createTopics({
    topics: [{ topic: 'short', numPartitions: 1, configEntries: [{ name: 'segment.bytes', value: '2048' }, { name: 'retention.bytes', value: '4096' }] }],
  });
  const producer = k.producer();
  await producer.connect();
  t.teardown(() => producer.disconnect());
  for (let i = 0; i < 40; i++) await producer.send({ topic: 'short', messages: [{ value: `v${i}`.padEnd(100, '.') }] });
  t.true(b.enforceRetention() > 0);
  const [p] = await admin.fetchTopicOffsets('short');
  t.is(p!.high, '40');
  const low = Number(p!.low);
  t.true(low > 0 && low < 40);
  const consumer = k.consumer({ groupId: 'ret', maxWaitTimeInMs: 100 });
  await consumer.connect();
  t.teardown(() => consumer.disconnect());
  await consumer.subscribe({ topic: 'short', fromBeginning: true });
  const got: number[] = [];
  await consumer.run({ eachMessage: async ({ message }) => void got.push(Number(message.offset)) });
  await waitFor(() => got.length >= 40 - low, 10_000, 'retained messages');
  t.is(got[0], low);
});

test('flush policy os: produces are answered without waiting for fsync and survive a clean restart', async (t) => {
  const first = await broker(t, { flushPolicy: 'os' });
  const producer = kafka(first, 'os-policy').producer();
  await producer.connect();
  for (let i = 0; i < 10; i++) await producer.send({ topic: 'os', acks: -1, messages: [{ value: `v${i}` }, { value: `w${i}` }] });
  await producer.disconnect();
  await first.close();
  const second = await broker(t, { dataDir: first.dataDir });
  const admin = kafka(second, 'os-policy').admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  t.is((await admin.fetchTopicOffsets('os'))[0]!.high, '20');
});
