/**
 * XDR through a 3-node Apache Kafka cluster (KRaft, topic replication factor 3,
 * min.insync.replicas 2) while nodes crash: kill -9 one Kafka node while A ships under load,
 * bring it back, then kill -9 the active controller. The shipper and receiver ride through the
 * leader changes, nothing A acknowledged is lost, and `ferry verify` finds the sites EQUAL.
 */
import test from 'ava';
import { Kafka, logLevel } from 'kafkajs';
import type { FerryClient } from '../../store/client/client.js';
import { kafkaPerFile } from '../helpers/kafka.js';
import { runCli } from '../ops/helpers.js';
import { startSites } from './sites.js';

const kafka = kafkaPerFile(test, { nodes: 3 });

/** Writes in flight at once from the load loop. */
const LOAD_IN_FLIGHT = 16;
/** Load runs this long after each crash before the next step. */
const CRASH_LOAD_MS = 5000;

/** Writes to A until stopped; returns the last value acknowledged per key. */
function startLoad(c: () => FerryClient): { stop(): Promise<Map<string, number>>; errors: string[] } {
  const acked = new Map<string, number>();
  const errors: string[] = [];
  let running = true;
  let i = 0;
  const worker = async (): Promise<void> => {
    while (running) {
      const n = i++;
      const key = `k${n % 700}`;
      try {
        await c().put({ namespace: 'test', set: 'load', key }, { n, pad: 'x'.repeat(64) });
        if ((acked.get(key) ?? -1) < n) acked.set(key, n);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  };
  const workers = Array.from({ length: LOAD_IN_FLIGHT }, () => worker());
  return {
    errors,
    async stop() {
      running = false;
      await Promise.all(workers);
      return acked;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('[apache 3 nodes] kill -9 a Kafka node, then the controller, under load: B converges and verify says EQUAL', async (t) => {
  const cluster = await kafka.cluster();
  const s = await startSites((dir) => kafka.broker('apache', dir), { destination: { 'kafka-partitions': 6 } });
  t.teardown(() => s.close());

  const admin = new Kafka({ clientId: 'cluster-test', brokers: cluster.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const meta = await admin.fetchTopicMetadata({ topics: [s.topic] });
  await admin.disconnect();
  t.true(meta.topics[0]!.partitions.every((p) => p.replicas.length === 3), 'the shipper\'s topic has replication factor 3');

  const load = startLoad(() => s.clientA);
  await sleep(2000);
  const first = cluster.nodes.find((n) => !n.isController)!;
  t.log(`kill -9 kafka node ${first.id} (pid ${first.pid})`);
  await first.stop('SIGKILL');
  await sleep(CRASH_LOAD_MS);
  await first.start();
  await sleep(2000);
  const controller = cluster.controller;
  t.truthy(controller, 'one node is the active controller');
  t.log(`kill -9 the controller, kafka node ${controller!.id} (pid ${controller!.pid})`);
  await controller!.stop('SIGKILL');
  await sleep(CRASH_LOAD_MS);
  const acked = await load.stop();
  t.deepEqual(load.errors.slice(0, 5), [], 'writes to A never fail because Kafka nodes crash');
  t.true(acked.size > 100, `${acked.size} keys written`);
  await controller!.start();

  await s.converged(120_000);
  for (const [key, n] of acked) {
    const r = await s.clientB.get({ namespace: 'test', set: 'load', key });
    if (r?.bins.n !== n) t.fail(`${key}: B has ${JSON.stringify(r?.bins.n)}, A acknowledged ${n}`);
  }
  const verify = await runCli(['verify', '--a', `127.0.0.1:${s.ports.a}`, '--b', `127.0.0.1:${s.ports.b}`, '--namespace', 'test']);
  t.is(verify.code, 0, `${verify.stdout}\n${verify.stderr}`);
  t.regex(verify.stdout, /EQUAL/);
  const x = await s.xdrStats();
  t.log(`shipper retries during the crashes: ${JSON.stringify(x.streams.map((st) => (st as { retries?: number }).retries))}`);
});
