/** The simulator's parts on their own: scheduler, device, Kafka log, network. */
import test from 'ava';
import { seededRandom } from '../../store/runtime/index.js';
import { Scheduler, SIM_EPOCH_MS } from '../../sim/scheduler.js';
import { SimDevice } from '../../sim/device.js';
import { SimKafkaLog } from '../../sim/kafka-log.js';
import { SimNetwork } from '../../sim/network.js';

test('scheduler: events run in virtual time order; a killed owner never runs again', async (t) => {
  const s = new Scheduler();
  const seen: string[] = [];
  const timers = s.timersFor('a');
  timers.setTimeout(() => seen.push(`a30@${s.nowMs - SIM_EPOCH_MS}`), 30);
  s.at('b', 10, () => seen.push(`b10@${s.nowMs - SIM_EPOCH_MS}`));
  const iv = timers.setInterval(() => seen.push(`tick@${s.nowMs - SIM_EPOCH_MS}`), 25);
  s.at('c', 60, () => {
    timers.clearInterval(iv);
    s.kill('a');
  });
  timers.setTimeout(() => seen.push('never'), 100);
  await s.runFor(1000);
  t.deepEqual(seen, ['b10@10', 'tick@25', 'a30@30', 'tick@50']);
  t.is(s.nowMs, SIM_EPOCH_MS + 1000);
});

test('device: a crash keeps synced writes, and loses or tears unsynced ones', async (t) => {
  const seed = 5;
  const s = new Scheduler();
  const dev = new SimDevice(4096, 4, s, 'n1', seededRandom(seed), { ioDelayMsMax: 2, lostPct: 50, tornPct: 50, bitFlipPct: 0 });
  let done = false;
  void (async () => {
    await dev.write(0, 0, Buffer.alloc(100, 1));
    await dev.sync();
    for (let i = 0; i < 20; i++) await dev.write(1, i * 100, Buffer.alloc(100, 2));
    done = true;
  })();
  await s.runUntil(Number.MAX_SAFE_INTEGER, () => done);
  t.is(dev.unsyncedWrites, 20);
  t.deepEqual(dev.read(1, 0, 100), Buffer.alloc(100, 2), 'readers see completed writes');
  const after = dev.crash('n2');
  t.deepEqual(after.read(0, 0, 100), Buffer.alloc(100, 1), `synced bytes survive (seed ${seed})`);
  const kept = Array.from({ length: 20 }, (_, i) => after.read(1, i * 100, 100).filter((b) => b === 2).length);
  t.true(kept.some((n) => n === 0), `some unsynced writes are lost: ${kept.join(',')}`);
  t.true(kept.some((n) => n > 0 && n < 100), `some are torn: ${kept.join(',')}`);
  t.is(after.stats.lost + after.stats.torn, 20);
});

test('device: a crash while a sync is in flight puts the writes it covers at risk too', async (t) => {
  const s = new Scheduler();
  const dev = new SimDevice(4096, 2, s, 'n1', seededRandom(11), { ioDelayMsMax: 8, lostPct: 100, tornPct: 0, bitFlipPct: 0 });
  let wrote = false;
  void (async () => {
    for (let i = 0; i < 10; i++) await dev.write(0, i * 100, Buffer.alloc(100, 3));
    wrote = true;
    await dev.sync();
  })();
  await s.runUntil(Number.MAX_SAFE_INTEGER, () => wrote);
  // The sync has started (its writes left the unsynced list) but not completed.
  t.is(dev.unsyncedWrites, 10, 'writes under a running sync still count as at risk');
  const after = dev.crash('n2');
  t.deepEqual(after.read(0, 0, 1000), Buffer.alloc(1000), 'none of them is durable');
  t.is(after.stats.lost, 10);
});

test('kafka log: down refuses, data and committed offsets survive; a failed batch is redelivered', async (t) => {
  const s = new Scheduler();
  const log = new SimKafkaLog(s, seededRandom(9));
  const link = log.linkFor('c')({ role: 'shipper', clientId: 'x', brokers: [] });
  const got: string[] = [];
  let failOnce = true;
  let finished = false;
  void (async () => {
    t.is(await link.ensureTopic('t', 2), 2);
    const p = await link.idempotentProducer();
    await p.send('t', [0, 1, 2].map((i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`), headers: {}, partition: 0 })), 'none');
    log.down = true;
    await t.throwsAsync(p.send('t', [{ key: null, value: null, headers: {}, partition: 0 }], 'none'), { message: /unavailable/ });
    log.down = false;
    const c = await link.consumer({ groupId: 'g', topics: ['t'], fromBeginning: true });
    await c.run({
      onCrash: () => undefined,
      eachBatch: async (batch) => {
        if (failOnce) {
          failOnce = false;
          throw new Error('apply failed');
        }
        for (const m of batch.messages) got.push(`${m.offset}:${m.value?.toString()}`);
        await c.commit(batch.topic, batch.partition, String(Number(batch.messages.at(-1)!.offset) + 1));
      },
    });
    await s.sleep('c', 2000);
    t.is(await link.groupLag('g', ['t']), 0);
    finished = true;
  })();
  await s.runUntil(Number.MAX_SAFE_INTEGER, () => finished);
  t.deepEqual(got, ['0:v0', '1:v1', '2:v2']);
});

test('network: delivers in order without faults; loses and duplicates under faults; partitions close connections', async (t) => {
  const s = new Scheduler();
  const net = new SimNetwork(s, seededRandom(3));
  const received: string[] = [];
  let closedByPartition = false;
  let finished = false;
  void (async () => {
    await net.transportFor('b', 'B').listen({ host: 'b', port: 1 }, (conn) => conn.onFrame((f) => received.push(f.toString())));
    const conn = net.transportFor('a', 'A').connect({ host: 'b', port: 1 });
    for (let i = 0; i < 50; i++) conn.send(Buffer.from(String(i)));
    await s.sleep('test', 100);
    t.deepEqual(received, Array.from({ length: 50 }, (_, i) => String(i)), 'FIFO with no faults');
    received.length = 0;
    net.faults = { delayMsMin: 1, delayMsMax: 20, lossPct: 20, duplicatePct: 20, reorderPct: 50 };
    for (let i = 0; i < 200; i++) conn.send(Buffer.from(String(i)));
    await s.sleep('test', 100);
    t.true(net.stats.dropped > 0 && net.stats.duplicated > 0);
    t.not(received.length, 200);
    t.notDeepEqual(received, [...received].sort((x, y) => Number(x) - Number(y)), 'some frames reordered');
    conn.onClose(() => (closedByPartition = true));
    net.partition(['a'], ['b']);
    await s.sleep('test', 1000);
    t.true(closedByPartition && conn.closed);
    let refused = false;
    net.transportFor('a', 'A').connect({ host: 'b', port: 1 }).onClose(() => (refused = true));
    await s.sleep('test', 100);
    t.true(refused, 'no new connection across a partition');
    finished = true;
  })();
  await s.runUntil(Number.MAX_SAFE_INTEGER, () => finished);
  t.true(finished);
});

test('network: per-link faults and pairwise cuts (a partial partition: a-c cut, a-b and b-c up)', async (t) => {
  const s = new Scheduler();
  const net = new SimNetwork(s, seededRandom(4));
  const got = new Map<string, number>();
  let finished = false;
  void (async () => {
    for (const h of ['b', 'c']) await net.transportFor(h, h).listen({ host: h, port: 1 }, (conn) => conn.onFrame((f) => got.set(`${f.toString()}>${h}`, (got.get(`${f.toString()}>${h}`) ?? 0) + 1)));
    net.setLinkFaults('a', 'b', { lossPct: 100 });
    const ab = net.transportFor('a', 'a').connect({ host: 'b', port: 1 });
    const cb = net.transportFor('c', 'c').connect({ host: 'b', port: 1 });
    for (let i = 0; i < 20; i++) {
      ab.send(Buffer.from('a'));
      cb.send(Buffer.from('c'));
    }
    await s.sleep('test', 100);
    t.is(got.get('a>b'), undefined, 'the lossy link loses everything');
    t.is(got.get('c>b'), 20, 'other links are untouched');
    net.clearLinkFaults();
    net.cut(['a', 'c']);
    let refused = false;
    net.transportFor('a', 'a').connect({ host: 'c', port: 1 }).onClose(() => (refused = true));
    const ab2 = net.transportFor('a', 'a').connect({ host: 'b', port: 1 });
    ab2.send(Buffer.from('a'));
    await s.sleep('test', 100);
    t.true(refused && net.isCut('c', 'a'), 'a and c cannot reach each other, both ways');
    t.is(got.get('a>b'), 1, 'a still reaches b');
    finished = true;
  })();
  await s.runUntil(Number.MAX_SAFE_INTEGER, () => finished);
  t.true(finished);
});
