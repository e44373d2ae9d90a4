/**
 * Differential tests of the embedded broker: the same kafkajs, kcat and raw-protocol exchanges
 * run against ferry's broker and against Apache Kafka (one KRaft node for the whole file), and
 * what a client can observe must be the same: metadata shape, produce/fetch round trips, offsets
 * by timestamp, consumer group join/sync/commit/rebalance, and the error codes for unknown
 * topics, bad offsets, oversize and corrupt batches and unsupported versions. Broker ids, ports
 * and timings are left out of the observations; known differences are in docs/broker.md.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { kafkaPerFile } from '../helpers/kafka.js';
import { buildBatch, int16, int32, produceFrame } from './batches.js';
import { broker as embeddedBroker, waitFor } from './helpers.js';

const apache = kafkaPerFile(test);
/** A raw request gets this long for its answer (or the close). */
const RAW_REPLY_TIMEOUT_MS = 10_000;
/** A kcat run gets this long. */
const KCAT_TIMEOUT_MS = 30_000;

type Exchange = (brokers: string[], name: (s: string) => string) => Promise<unknown>;

let topicSeq = 0;
/** Runs `exchange` against both brokers (fresh topic names each) and requires equal observations. */
async function differential(t: ExecutionContext, exchange: Exchange): Promise<void> {
  const b = await embeddedBroker(t);
  const cluster = await apache.cluster();
  const run = async (brokers: string[]) => {
    const seq = ++topicSeq;
    return exchange(brokers, (s) => `${s}-${seq}`);
  };
  const embedded = await run([`${b.host}:${b.port}`]);
  const kafka = await run(cluster.brokers);
  t.deepEqual(embedded, kafka, 'embedded (actual) vs Apache Kafka (expected)');
  t.log(JSON.stringify(kafka));
}

const client = (brokers: string[], id = 'diff') => new Kafka({ clientId: id, brokers, logLevel: logLevel.NOTHING, retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 } });

async function withAdmin<T>(brokers: string[], f: (a: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    return await f(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Topic metadata polls before a created topic counts as not ready. */
const TOPIC_READY_TIMEOUT_MS = 30_000;

/**
 * Creates a topic and waits until every partition has a leader in the metadata. (kafkajs's
 * waitForLeaders gives up on UNKNOWN_TOPIC_OR_PARTITION, which a loaded Apache Kafka answers
 * while its broker's metadata cache has not caught up with the controller.)
 */
async function createReady(a: ReturnType<Kafka['admin']>, spec: { topic: string; numPartitions: number }): Promise<void> {
  await a.createTopics({ topics: [spec] });
  await waitFor(async () => {
    try {
      const meta = await a.fetchTopicMetadata({ topics: [spec.topic] });
      const parts = meta.topics[0]?.partitions ?? [];
      return parts.length === spec.numPartitions && parts.every((p) => p.leader >= 0);
    } catch {
      return false;
    }
  }, TOPIC_READY_TIMEOUT_MS, `topic ${spec.topic} to have a leader for each partition`);
}

function errorType(err: unknown): string {
  const e = err as { type?: string; name?: string; cause?: unknown; originalError?: unknown };
  if (e.type) return e.type;
  if (e.originalError) return errorType(e.originalError);
  if (e.cause) return errorType(e.cause);
  return e.name ?? String(err);
}

test.serial('metadata shape: topics, partitions, one replica in sync, leaders known; an unknown topic is UNKNOWN_TOPIC_OR_PARTITION', async (t) => {
  await differential(t, (brokers, name) => withAdmin(brokers, async (admin) => {
    const created = await admin.createTopics({ topics: [{ topic: name('meta'), numPartitions: 3 }], waitForLeaders: true });
    const again = await admin.createTopics({ topics: [{ topic: name('meta'), numPartitions: 3 }] });
    const meta = await admin.fetchTopicMetadata({ topics: [name('meta')] });
    const shape = meta.topics.map((tp) => ({
      partitions: tp.partitions.map((p) => ({ id: p.partitionId, error: p.partitionErrorCode, replicas: p.replicas.length, isr: p.isr.length, leaderIsReplica: p.replicas.includes(p.leader) })).sort((x, y) => x.id - y.id),
    }));
    const unknown = await admin.fetchTopicMetadata({ topics: [name('absent')] }).then(() => 'no error', errorType);
    const listed = (await admin.listTopics()).includes(name('meta'));
    return { created, again, shape, unknown, listed };
  }));
});

test.serial('produce/fetch round trip: keys, values, headers, timestamps and offsets per partition', async (t) => {
  await differential(t, async (brokers, name) => {
    const topic = name('rt');
    await withAdmin(brokers, (a) => createReady(a, { topic, numPartitions: 2 }));
    const kafka = client(brokers);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const base = 1_700_000_000_000;
    const acks = [];
    for (let i = 0; i < 3; i++) {
      acks.push(await producer.send({
        topic, acks: -1,
        messages: Array.from({ length: 5 }, (_, j) => ({ partition: j % 2, key: `k${i}-${j}`, value: `v${i}-${j}`, headers: { h: `x${j}` }, timestamp: String(base + i * 10 + j) })),
      }));
    }
    await producer.disconnect();
    const got = await consumeAll(kafka, topic, name('g'), 15);
    return { acks: acks.map((r) => r.map((x) => ({ partition: x.partition, baseOffset: x.baseOffset, errorCode: x.errorCode })).sort((x, y) => x.partition - y.partition)), got };
  });
});

async function consumeAll(kafka: Kafka, topic: string, groupId: string, n: number): Promise<string[]> {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  const got: string[] = [];
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ partition, message: m }) => void got.push(`${partition}:${m.offset}:${String(m.key)}=${String(m.value)}:${String(m.headers?.h)}:${m.timestamp}`) });
    await waitFor(() => got.length >= n, 30_000, `${n} messages`);
  } finally {
    await consumer.disconnect();
  }
  return got.sort();
}

test.serial('offsets: earliest/latest and by timestamp (before, between, after the records)', async (t) => {
  await differential(t, async (brokers, name) => {
    const topic = name('ts');
    await withAdmin(brokers, (a) => createReady(a, { topic, numPartitions: 1 }));
    const producer = client(brokers).producer();
    await producer.connect();
    const base = 1_700_000_000_000;
    await producer.send({ topic, acks: -1, messages: [0, 100, 200, 300].map((d, i) => ({ partition: 0, value: `m${i}`, timestamp: String(base + d) })) });
    await producer.disconnect();
    return withAdmin(brokers, async (a) => ({
      bounds: (await a.fetchTopicOffsets(topic)).map((p) => ({ p: p.partition, low: p.low, high: p.high, offset: p.offset })),
      byTime: await Promise.all([base - 1, base + 150, base + 300, base + 10_000].map(async (ts) => (await a.fetchTopicOffsetsByTimestamp(topic, ts)).map((p) => p.offset))),
      kcat: await kcat(['-Q', '-b', brokers[0]!, '-t', `${topic}:0:${base + 150}`]).then((r) => r.stdout.replace(topic, 'TOPIC').replace(/\s+/g, ' ').trim()),
    }));
  });
});

test.serial('consumer group: two members split the partitions, commits are fetched back, a leaving member hands its partitions over', async (t) => {
  await differential(t, async (brokers, name) => {
    const topic = name('grp');
    const groupId = name('group');
    await withAdmin(brokers, (a) => createReady(a, { topic, numPartitions: 4 }));
    const kafka = client(brokers);
    const assigned = new Map<Consumer, number[]>();
    const member = async () => {
      const c = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 100, rebalanceTimeout: 10_000 });
      c.on(c.events.GROUP_JOIN, (e) => assigned.set(c, [...(e.payload.memberAssignment[topic] ?? [])].sort()));
      await c.connect();
      await c.subscribe({ topic, fromBeginning: true });
      await c.run({ autoCommit: false, eachMessage: async () => undefined });
      return c;
    };
    const c1 = await member();
    await waitFor(() => assigned.get(c1)?.length === 4, 30_000, 'the first member to get all partitions');
    const c2 = await member();
    await waitFor(() => assigned.get(c2)?.length === 2 && assigned.get(c1)?.length === 2, 30_000, 'two members with two partitions each');
    const split = [assigned.get(c1)!.length, assigned.get(c2)!.length];
    const union = [...assigned.get(c1)!, ...assigned.get(c2)!].sort();
    const described = await withAdmin(brokers, (a) => a.describeGroups([groupId]));
    const g = described.groups[0]!;
    const group = { state: g.state, protocolType: g.protocolType, members: g.members.length };
    await c2.disconnect();
    await waitFor(() => assigned.get(c1)?.length === 4, 30_000, 'the remaining member to take all partitions');
    await c1.disconnect();
    const empty = (await withAdmin(brokers, (a) => a.describeGroups([groupId]))).groups[0]!.state;
    // An empty group takes commits from outside (generation -1), as `ferry replay` does.
    const committed = await withAdmin(brokers, async (a) => {
      await a.setOffsets({ groupId, topic, partitions: [{ partition: 1, offset: '7' }, { partition: 2, offset: '0' }] });
      return a.fetchOffsets({ groupId, topics: [topic] });
    });
    const offsets = committed[0]!.partitions.map((p) => [p.partition, p.offset]).sort();
    return { split, union, group, offsets, afterLeave: 4, empty };
  });
});

test.serial('errors: oversize batch MESSAGE_TOO_LARGE; produce to an unknown topic, corrupt CRC, two batches, bad acks; unsupported versions', async (t) => {
  await differential(t, async (brokers, name) => {
    const topic = name('err');
    await withAdmin(brokers, (a) => createReady(a, { topic, numPartitions: 1 }));
    const producer = client(brokers).producer({ retry: { retries: 0 } });
    await producer.connect();
    const oversize = await producer.send({ topic, acks: -1, messages: [{ value: Buffer.alloc(20 * 1024 * 1024, 1) }] }).then(() => 'accepted', errorType);
    await producer.disconnect();
    const [host, port] = brokers[0]!.split(':') as [string, string];
    const bad = buildBatch({ values: ['evil'] });
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
    const produceErrors = {
      unknownTopic: partitionError(await raw(host, Number(port), produceFrame(name('nope'), 0, buildBatch({ values: ['x'] })))),
      corruptCrc: partitionError(await raw(host, Number(port), produceFrame(topic, 0, bad))),
      twoBatches: partitionError(await raw(host, Number(port), produceFrame(topic, 0, Buffer.concat([buildBatch({ values: ['a'] }), buildBatch({ values: ['b'] })])))),
      badAcks: partitionError(await raw(host, Number(port), produceFrame(topic, 0, buildBatch({ values: ['a'] }), 5))),
    };
    // ApiVersions v3+ uses request header v2 (a tag buffer after the client id), as librdkafka sends it.
    const apiVersions99 = await raw(host, Number(port), request(18, 99, 7, Buffer.from([0])));
    const metadata99 = await raw(host, Number(port), request(3, 99, 8));
    const stored = await withAdmin(brokers, async (a) => (await a.fetchTopicOffsets(topic))[0]!.high);
    return {
      oversize,
      produceErrors,
      apiVersions99: apiVersions99 === 'closed' ? 'closed' : { correlationId: apiVersions99.readInt32BE(0), error: apiVersions99.readInt16BE(4) },
      metadata99: metadata99 === 'closed' ? 'closed' : 'answered',
      stored,
    };
  });
});

test.serial('kcat: metadata, produce with keys, consume from the beginning, and an offset out of range', async (t) => {
  await differential(t, async (brokers, name) => {
    const topic = name('kc');
    await withAdmin(brokers, (a) => createReady(a, { topic, numPartitions: 2 }));
    const b = brokers[0]!;
    const produced = await kcat(['-P', '-b', b, '-t', topic, '-p', '1', '-K', ':'], 'a:1\nb:2\nc:3\n');
    const meta = JSON.parse((await kcat(['-L', '-J', '-b', b, '-t', topic])).stdout) as { topics: Array<{ topic: string; partitions: Array<{ partition: number; replicas: unknown[]; isrs: unknown[] }> }> };
    const consumed = await kcat(['-C', '-b', b, '-t', topic, '-p', '1', '-o', 'beginning', '-e', '-f', '%k=%s@%o\\n']);
    const outOfRange = await kcat(['-C', '-b', b, '-t', topic, '-p', '1', '-o', '1000', '-e', '-X', 'auto.offset.reset=error']);
    return {
      produced: produced.code,
      meta: meta.topics.map((tp) => ({ topic: tp.topic === topic, partitions: tp.partitions.map((p) => [p.partition, p.replicas.length, p.isrs.length]) })),
      consumed: consumed.stdout.trim().split('\n'),
      outOfRange: { code: outOfRange.code, offsetOutOfRange: /Offset out of range/i.test(outOfRange.stderr + outOfRange.stdout) },
    };
  });
});

// ---------------------------------------------------------------- raw protocol and kcat

function request(apiKey: number, version: number, correlationId: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const id = Buffer.from('raw');
  const payload = Buffer.concat([int16(apiKey), int16(version), int32(correlationId), int16(id.length), id, body]);
  return Buffer.concat([int32(payload.length), payload]);
}

/** Sends one request frame on a new connection; the response frame (without size) or 'closed'. */
function raw(host: string, port: number, frame: Buffer): Promise<Buffer | 'closed'> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const s = net.connect(port, host, () => s.write(frame));
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no reply and no close'));
    }, RAW_REPLY_TIMEOUT_MS);
    const done = (v: Buffer | 'closed') => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) done(buf.subarray(4, 4 + buf.readInt32BE(0)));
    });
    s.on('close', () => done('closed'));
    s.on('error', () => undefined);
  });
}

/** Error code of the single partition in a Produce v3 response frame. */
function partitionError(frame: Buffer | 'closed'): number | 'closed' {
  if (frame === 'closed') return 'closed';
  let at = 4 + 4;
  const nameLen = frame.readInt16BE(at);
  at += 2 + nameLen + 4 + 4;
  return frame.readInt16BE(at);
}

function kcat(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('kcat', args, { timeout: KCAT_TIMEOUT_MS }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string }) | null;
      if (e && typeof e.code !== 'number') reject(new Error(`kcat ${args.join(' ')}: ${e.message}`));
      else resolve({ code: e ? Number(e.code) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}
