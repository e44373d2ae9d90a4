/**
 * A destination that accepts connections but never answers, as real processes: the embedded
 * broker, node B behind a TCP relay the test can freeze (it keeps every connection open, accepts
 * new ones, and forwards nothing either way), and `ferry receiver` applying to B through the
 * relay. Shipped versions are produced with kafkajs in the ferry format. While B is silent the
 * receiver keeps its writes in flight within apply-concurrency, logs that the destination does
 * not answer, commits nothing past what B applied, and exits by itself on SIGTERM within its
 * shutdown timeout; once B answers again a new receiver applies the rest.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { FerryClient } from '../../store/client/client.js';
import { computeDigest, partitionOf } from '../../store/digest.js';
import { encodeVersion } from '../../store/xdr/shipped-record.js';
import { ParticleType } from '../../store/types.js';
import { FerryProcess, freePort, getJson, waitFor } from '../helpers/procs.js';
import { embeddedBroker, type BrokerUnderTest } from '../helpers/kafka.js';
import type { ReceiverStats } from '../../receiver/receiver.js';

const TOPIC = 'ferry.A.test';
const GROUP = 'ferry-receiver-B';
/** One partition, two receivers: one of them has nothing to apply (its group has lag, it does not). */
const PARTITIONS = 1;
const APPLY_CONCURRENCY = 16;
const BATCH = 1500;

/** A relay to `port` that can be frozen: frozen, it holds every socket open and forwards nothing. */
class FreezableRelay {
  frozen = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  constructor(private readonly upstreamPort: number) {
    this.server = net.createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      if (this.frozen) return; // accepted, never answered
      const up = net.connect(this.upstreamPort, '127.0.0.1');
      this.sockets.add(up);
      up.on('close', () => {
        this.sockets.delete(up);
        client.destroy();
      });
      up.on('error', () => undefined);
      client.on('close', () => up.destroy());
      client.on('data', (d) => void (this.frozen || up.write(d)));
      up.on('data', (d) => void (this.frozen || client.write(d)));
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function produce(brokers: string[], from: number, count: number): Promise<void> {
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
  const p = kafka.producer();
  await p.connect();
  try {
    const lut = Date.now();
    const messages = Array.from({ length: count }, (_, j) => {
      const i = from + j;
      const digest = computeDigest('demo', `k${i}`);
      const pid = partitionOf(digest);
      const v = { namespace: 'test', set: 'demo', digest, generation: 1, lutMs: lut + j, voidTimeS: 0, tombstone: false, bins: [{ name: 's', type: ParticleType.STRING, bytes: Buffer.from(`v${i}`) }] };
      return { ...encodeVersion(v, 'A', pid), partition: pid % PARTITIONS };
    });
    await p.send({ topic: TOPIC, messages });
  } finally {
    await p.disconnect();
  }
}

async function committed(admin: Admin): Promise<number> {
  const got = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
  return got.flatMap((t) => t.partitions).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
}

async function objectsOnB(port: number): Promise<number> {
  const c = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port }], tendIntervalMs: 0 });
  try {
    return Number(/objects=(\d+)/.exec(await c.infoValue('sets/test/demo'))?.[1] ?? 0);
  } finally {
    c.close();
  }
}

test('a destination that accepts connections and never answers: bounded writes in flight, a clear log, no offset past what was applied, SIGTERM exits; then it catches up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-rx-stuck-'));
  let broker: BrokerUnderTest | undefined;
  const procs: FerryProcess[] = [];
  let relay: FreezableRelay | undefined;
  let admin: Admin | undefined;
  try {
    broker = await embeddedBroker(dir);
    const bPort = await freePort();
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ namespaces: [{ name: 'test', 'storage-engine': 'memory', fenced: true, 'nsup-period': 0 }] }));
    const b = new FerryProcess('node B', ['node', '--config', join(dir, 'b.json'), '--data', join(dir, 'b'), '--port', String(bPort)], /ferry node listening/);
    procs.push(b);
    await b.start();
    relay = new FreezableRelay(bPort);
    const relayPort = await relay.listen();
    admin = new Kafka({ brokers: broker.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }] });
    await produce(broker.brokers, 0, BATCH);

    const members: Array<{ proc: FerryProcess; port: number }> = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      writeFileSync(join(dir, `r${i}.json`), JSON.stringify({
        brokers: broker.brokers, topics: [TOPIC], destination: [`127.0.0.1:${relayPort}`], 'metrics-port': port, 'group-id': GROUP,
        'apply-concurrency': APPLY_CONCURRENCY, 'shutdown-timeout-s': 3,
      }));
      const proc = new FerryProcess(`receiver ${i}`, ['receiver', '--config', join(dir, `r${i}.json`)], /ferry receiver ready/);
      procs.push(proc);
      members.push({ proc, port });
      await proc.start();
    }
    const statsOf = (port: number) => getJson<ReceiverStats>(`http://127.0.0.1:${port}/stats`);
    // The group gives the one partition to one of them.
    let busyAt = -1;
    await waitFor(async () => {
      const rs = await Promise.all(members.map((m) => statsOf(m.port)));
      busyAt = rs.findIndex((r) => (r.partitions ?? []).length === 1);
      return busyAt >= 0 && rs.every((r, i) => (r.partitions ?? []).length === (i === busyAt ? 1 : 0));
    }, 30_000, 'the group to give its partition to one receiver');
    const receiver = members[busyAt]!.proc;
    const idle = members[1 - busyAt]!.proc;
    const stats = () => statsOf(members[busyAt]!.port);
    await waitFor(async () => (await committed(admin!)) === BATCH, 30_000, 'the first batch to be applied and committed');
    t.is(await objectsOnB(bPort), BATCH);

    // B goes silent; more arrives.
    relay.frozen = true;
    await produce(broker.brokers, BATCH, BATCH);
    await waitFor(() => /has answered nothing for \d+ s with \d+ replicated writes waiting/.test(receiver.output), 30_000, 'the receiver to log that the destination does not answer');
    const s = await stats();
    t.true((s.applyInFlight ?? 0) > 0 && (s.applyInFlight ?? 0) <= APPLY_CONCURRENCY, `writes in flight within apply-concurrency: ${s.applyInFlight}`);
    t.regex(receiver.output, new RegExp(`destination 127\\.0\\.0\\.1:${relayPort} has answered nothing`));
    t.is(await committed(admin), BATCH, 'nothing committed past what the destination applied');
    t.is(await objectsOnB(bPort), BATCH);
    // Let the silence outlast the consumer watchdog (15 s): the receiver that has the partition logs
    // and waits (its writes are in flight); the one without partitions, whose group has lag but
    // which has nothing to apply, never restarts its consumer.
    await waitFor(() => (receiver.output.match(/has answered nothing for/g) ?? []).length >= 4, 60_000, 'the silence to last past the watchdog');
    t.notRegex(idle.output, /restarting the consumer/, idle.output.slice(-2000));
    t.notRegex(receiver.output, /restarting the consumer/, receiver.output.slice(-2000));
    t.is(await committed(admin), BATCH);

    // SIGTERM while B is silent: the receiver ends by itself (FerryProcess would SIGKILL after 15 s).
    await receiver.stop('SIGTERM');
    t.is(receiver.exit?.signal, null, `the receiver exited on its own: ${JSON.stringify(receiver.exit)}`);
    // Its writes in flight were failed at once (not left to time out): every shutdown step finished.
    t.is(receiver.exit?.code, 0, receiver.output.slice(-2000));
    t.is(await committed(admin), BATCH, 'still nothing committed past what was applied');

    // B answers again: a new receiver applies the rest.
    relay.frozen = false;
    await receiver.start();
    await waitFor(async () => (await committed(admin!)) === 2 * BATCH, 60_000, 'the rest to be applied and committed');
    t.is(await objectsOnB(bPort), 2 * BATCH);
  } finally {
    await admin?.disconnect().catch(() => undefined);
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await relay?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
