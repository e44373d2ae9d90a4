import test from 'ava';
import { CompressionTypes } from 'kafkajs';
import { broker, kafka, waitFor } from './helpers.js';

test('kafkajs: admin creates a topic, gzip produce, group consumer reads everything back', async (t) => {
  const b = await broker(t);
  const k = kafka(b);
  const admin = k.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  t.true(await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 3 }] }));
  t.false(await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 3 }] }));
  t.deepEqual(await admin.listTopics(), ['orders']);

  const producer = k.producer();
  await producer.connect();
  t.teardown(() => producer.disconnect());
  const sent: string[] = [];
  for (let batch = 0; batch < 4; batch++) {
    const messages = Array.from({ length: 25 }, (_, i) => ({ key: `k${i % 7}`, value: `v-${batch}-${i}`, headers: { h: 'x' } }));
    sent.push(...messages.map((m) => m.value));
    const res = await producer.send({ topic: 'orders', messages, compression: CompressionTypes.GZIP, acks: -1 });
    t.true(res.every((r) => r.errorCode === 0));
  }
  const offsets = await admin.fetchTopicOffsets('orders');
  t.is(offsets.reduce((n, o) => n + Number(o.high), 0), 100);

  const consumer = k.consumer({ groupId: 'g1', maxWaitTimeInMs: 200 });
  await consumer.connect();
  t.teardown(() => consumer.disconnect());
  await consumer.subscribe({ topic: 'orders', fromBeginning: true });
  const got: string[] = [];
  let headerOk = true;
  await consumer.run({
    eachMessage: async ({ message }) => {
      got.push(message.value!.toString());
      if (message.headers?.h?.toString() !== 'x') headerOk = false;
    },
  });
  await waitFor(() => got.length >= 100, 20_000, '100 messages');
  t.deepEqual([...got].sort(), [...sent].sort());
  t.true(headerOk);
});
