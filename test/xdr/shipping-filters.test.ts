/**
 * What the shipper sends, read straight from the topics: one node A with several destinations,
 * each with one filter (ship-sets, ignore-sets, ship-bins, ship-deletes, ship-expirations +
 * forward, defaults), sharing one broker.
 *
 * 1. Rescan path: everything is written while the broker is down, so the first pass of every
 *    stream is a rescan of the partitions (no checkpoint yet); the records' stored origin must
 *    keep replicated versions and expiry tombstones out where the filters say so. A hot key
 *    updated 150 times ships once.
 * 2. Log-tail path: the same writes with the broker up.
 * 3. Write-log wrap: the broker is killed, more writes than the 1024-entry write log holds, broker
 *    restarted: every record still arrives (the wrapped partitions are rescanned).
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { FerryClient, ops } from '../../store/client/client.js';
import { computeDigest } from '../../store/digest.js';
import { decodeVersion } from '../../store/index.js';
import { RecordOrigin, type RecordVersion } from '../../store/types.js';
import { FerryProcess, freePort, waitFor } from '../helpers/procs.js';

const DESTS = {
  def: {},
  sets: { 'ship-sets': ['s1'] },
  ignore: { 'ignore-sets': ['s2'] },
  bins: { 'ship-bins': ['a'] },
  nodel: { 'ship-deletes': false },
  all: { 'ship-expirations': true, forward: true },
  slow: { 'ship-sets': ['rate'], 'max-records-per-s': 100 },
} as const;
const RATE_MAX_PER_S = 100;
const RATE_RECORDS = 300;
type Dest = keyof typeof DESTS;
const WRAP_KEYS = 1500;

interface Shipped {
  v: RecordVersion;
  hex: string;
  /** Kafka message timestamp (the producer's send time), ms. */
  ts: number;
}

async function readTopic(kafka: Kafka, topic: string): Promise<Shipped[]> {
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  const out: Shipped[] = [];
  if (total === 0) return out;
  const consumer = kafka.consumer({ groupId: `read-${topic}-${Date.now()}-${Math.random()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers: Record<string, string> = {};
      for (const [k, h] of Object.entries(message.headers ?? {})) headers[k] = String(Array.isArray(h) ? h[0] : h);
      const v = decodeVersion(message.key, message.value, headers);
      out.push({ v, hex: v.digest.toString('hex'), ts: Number(message.timestamp) });
    },
  });
  await waitFor(() => out.length >= total, 30_000, `${total} messages of ${topic}`);
  await consumer.disconnect();
  return out;
}

function hexOf(set: string, key: string): string {
  return computeDigest(set, key).toString('hex');
}

test.serial('shipping filters, origin on rescans and on the log tail, hot-key dedupe, write-log wrap', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-filters-'));
  const ports = { broker: await freePort(), a: await freePort() };
  const brokerAddr = `127.0.0.1:${ports.broker}`;
  writeFileSync(join(dir, 'a.json'), JSON.stringify({
    namespaces: [{ name: 'test', filesize: 256 * 1024 * 1024, 'write-block-size': 262144, 'write-log-entries': 1024, 'nsup-period': 1 }],
    xdr: {
      site: 'A',
      destinations: Object.entries(DESTS).map(([name, extra]) => ({
        name, brokers: [brokerAddr], namespaces: ['test'], topic: `t-${name}`, 'kafka-partitions': 2, 'checkpoint-interval-ms': 1000, 'retry-backoff-max-ms': 200, ...extra,
      })),
    },
  }));
  const broker = new FerryProcess('broker', ['broker', '--data', join(dir, 'broker'), '--port', String(ports.broker)], /listening/);
  const a = new FerryProcess('node A', ['node', '--config', join(dir, 'a.json'), '--data', join(dir, 'a'), '--port', String(ports.a)], /ferry node listening/);
  let client: FerryClient | undefined;
  t.teardown(async () => {
    if (!t.passed) {
      t.log(a.output.slice(-1500));
      t.log(await client?.infoValue('xdr-stats').catch((e: Error) => e.message));
    }
    client?.close();
    await Promise.all([a.stop('SIGKILL'), broker.stop('SIGKILL')]);
    rmSync(dir, { recursive: true, force: true });
  });
  await a.start();
  client = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.a }], tendIntervalMs: 0 });
  const c = client;
  const kafka = new Kafka({ clientId: 'filters-test', brokers: [brokerAddr], logLevel: logLevel.NOTHING });
  const nsStat = async (name: string) => Number(new RegExp(`(?:^|;)${name}=(\\d+)`).exec(await c.infoValue('namespace/test'))?.[1] ?? NaN);
  const xdrIdle = async () => {
    const x = JSON.parse(await c.infoValue('xdr-stats')) as { streams: Array<{ recordsBehind: number; recoveringPartitions: number; connected: boolean }> };
    return x.streams.every((s) => s.connected && s.recordsBehind === 0 && s.recoveringPartitions === 0);
  };

  /** One round of writes whose keys carry `tag`; returns when its TTL record has expired at A. */
  const writeRound = async (tag: string) => {
    const expiredBefore = await nsStat('expired_objects');
    await c.put({ namespace: 'test', set: 's1', key: `k-${tag}` }, { a: 1, b: 'x' });
    await c.put({ namespace: 'test', set: 's2', key: `k-${tag}` }, { a: 2 });
    await c.put({ namespace: 'test', set: 's3', key: `k-${tag}` }, { a: 3, b: 'dropped by ship-bins' });
    await c.put({ namespace: 'test', set: 's1', key: `del-${tag}` }, { a: 4 });
    await c.remove({ namespace: 'test', set: 's1', key: `del-${tag}` });
    await c.put({ namespace: 'test', set: 's1', key: `ttl-${tag}` }, { a: 5 }, { ttl: 1 });
    // A version applied by a replicated write (as a receiver would).
    const digest = computeDigest('s1', `repl-${tag}`);
    const r = await c.applyReplicated({ namespace: 'test', set: 's1', digest, generation: 7, lutMs: Date.now() - 5000, voidTimeS: 0, tombstone: false, bins: [{ name: 'a', type: 1, bytes: Buffer.from([0, 0, 0, 0, 0, 0, 0, 6]) }] }, 'generation');
    t.is(r.resultCode, 0);
    for (let i = 0; i < 10; i++) await Promise.all(Array.from({ length: 15 }, () => c.operate({ namespace: 'test', set: 's1', key: `hot-${tag}` }, [ops.incr('n', 1)])));
    await waitFor(async () => (await nsStat('expired_objects')) > expiredBefore, 15_000, `the ${tag} TTL record to expire at A`);
  };

  const putManyRate = async () => {
    for (let i = 0; i < RATE_RECORDS; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => c.put({ namespace: 'test', set: 'rate', key: `q${i + j}` }, { a: i + j })));
  };

  const check = async (tag: string, rescan: boolean) => {
    const topics = new Map<Dest, Shipped[]>();
    for (const d of Object.keys(DESTS) as Dest[]) topics.set(d, await readTopic(kafka, `t-${d}`));
    const has = (d: Dest, set: string, key: string) => topics.get(d)!.filter((m) => m.hex === hexOf(set, key));
    for (const d of Object.keys(DESTS) as Dest[]) {
      if (d === 'slow') continue;
      t.false(topics.get(d)!.some((m) => m.v.set === 'ferry-xdr'), `${tag} ${d}: checkpoints are never shipped`);
      t.true(has(d, 's1', `k-${tag}`).length > 0, `${tag} ${d}: s1 record shipped`);
    }
    // Defaults: replicated versions and expiry tombstones stay home; deletes ship.
    t.is(has('def', 's1', `repl-${tag}`).length, 0, `${tag}: forward false keeps a replicated version home`);
    const ttlDef = has('def', 's1', `ttl-${tag}`);
    if (rescan) {
      // Written and expired before anything was shipped: the expiry tombstone stands for a
      // version the destination never got, so it ships (docs/xdr.md).
      t.deepEqual(ttlDef.map((m) => [m.v.tombstone, m.v.origin]), [[true, RecordOrigin.EXPIRED]], `${tag}: an unshipped version's expiry tombstone ships`);
    } else {
      t.deepEqual(ttlDef.map((m) => m.v.tombstone), [false], `${tag}: the live version shipped, its expiry does not (ship-expirations false)`);
    }
    t.true(has('def', 's1', `del-${tag}`).some((m) => m.v.tombstone), `${tag}: a delete ships as a tombstone`);
    // forward + ship-expirations.
    t.true(has('all', 's1', `repl-${tag}`).some((m) => m.v.generation === 7), `${tag}: forward ships the replicated version`);
    const exp = has('all', 's1', `ttl-${tag}`).filter((m) => m.v.tombstone);
    t.is(exp.length, 1, `${tag}: ship-expirations ships the expiry tombstone`);
    t.is(exp[0]?.v.origin, RecordOrigin.EXPIRED, `${tag}: flagged as an expiry`);
    // Sets.
    t.true(topics.get('sets')!.every((m) => m.v.set === 's1'), `${tag}: ship-sets ships only s1`);
    t.is(has('ignore', 's2', `k-${tag}`).length, 0, `${tag}: ignore-sets leaves s2 out`);
    t.true(has('ignore', 's3', `k-${tag}`).length > 0);
    // Bins.
    const s3 = has('bins', 's3', `k-${tag}`);
    t.true(s3.length > 0 && s3.every((m) => m.v.bins.map((b) => b.name).join() === 'a'), `${tag}: ship-bins ships only bin a`);
    t.is(has('def', 's3', `k-${tag}`)[0]?.v.bins.length, 2);
    // Deletes.
    t.true(topics.get('nodel')!.every((m) => !m.v.tombstone), `${tag}: ship-deletes false ships no tombstone`);
    // Hot key: 150 increments; every shipped version is distinct, and when the stream starts behind, it ships once.
    const hot = has('def', 's1', `hot-${tag}`);
    t.true(hot.length >= 1 && new Set(hot.map((m) => m.v.generation)).size === hot.length, `${tag}: no version of the hot key ships twice`);
    if (rescan) t.is(hot.length, 1, `${tag}: the hot key ships once, at its latest version`);
    t.is(hot.at(-1)?.v.generation, 150);
  };

  // 1. Broker down: the first pass of every stream is a rescan.
  await writeRound('r1');
  await broker.start();
  await waitFor(xdrIdle, 60_000, 'every stream to ship the rescan');
  await check('r1', true);

  // 2. Broker up: the log tail.
  await writeRound('r2');
  await putManyRate();
  await waitFor(xdrIdle, 60_000, 'every stream to ship the tail');
  await check('r2', false);
  // The tail reads only the partitions whose log grew: most passes are not over all 4096.
  const passes = (JSON.parse(await c.infoValue('xdr-stats')) as { streams: Array<{ passes: number; fullPasses: number }> }).streams;
  t.true(passes.every((s) => s.passes > 2 * s.fullPasses), `passes / full passes per stream: ${passes.map((s) => `${s.passes}/${s.fullPasses}`).join(' ')}`);
  // max-records-per-s: no second of the topic holds more than one refill plus one batch.
  const slow = (await readTopic(kafka, 't-slow')).sort((x, y) => x.ts - y.ts);
  t.is(new Set(slow.map((m) => m.hex)).size, RATE_RECORDS, 'the throttled stream ships every record');
  let densest = 0;
  for (let i = 0, j = 0; i < slow.length; i++) {
    while (slow[j]!.ts <= slow[i]!.ts - 1000) j++;
    densest = Math.max(densest, i - j + 1);
  }
  t.true(densest <= 2 * RATE_MAX_PER_S, `at most ${2 * RATE_MAX_PER_S} records in any second at max-records-per-s ${RATE_MAX_PER_S}, saw ${densest}`);

  // 3. Write-log wrap during an outage: more changes than the log holds, all shipped by rescans.
  await broker.stop('SIGKILL');
  for (let i = 0; i < WRAP_KEYS; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => c.put({ namespace: 'test', set: 's1', key: `w${i + j}` }, { a: i + j })));
  }
  await broker.start();
  await waitFor(xdrIdle, 60_000, 'every stream to catch up after the wrap');
  const def = new Set((await readTopic(kafka, 't-def')).map((m) => m.hex));
  const missing = Array.from({ length: WRAP_KEYS }, (_, i) => `w${i}`).filter((k) => !def.has(hexOf('s1', k)));
  t.deepEqual(missing, [], 'every record written while the 1024-entry log wrapped was shipped');
});
