/**
 * Two sites for XDR tests, as real processes: a Kafka (the embedded broker or Apache Kafka, see
 * helpers/kafka.ts), node A shipping to B, node B (fenced, passive) and a receiver applying A's
 * topic to B.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryClient } from '../../store/client/client.js';
import { FerryProcess, freePort, getJson, waitFor } from '../helpers/procs.js';
import type { ReceiverStats } from '../../receiver/receiver.js';
import type { BrokerUnderTest } from '../helpers/kafka.js';

export interface Sites {
  dir: string;
  broker: BrokerUnderTest;
  /** A's topic and the receiver's group (unique per test on a shared Kafka). */
  topic: string;
  group: string;
  a: FerryProcess;
  b: FerryProcess;
  receiver: FerryProcess;
  ports: { a: number; b: number; receiver: number };
  clientA: FerryClient;
  clientB: FerryClient;
  receiverStats(): Promise<ReceiverStats>;
  xdrStats(): Promise<{ streams: Array<{ recordsBehind: number; msBehind: number; shipped: number }> }>;
  /** Waits until A has shipped everything and the receiver applied it. */
  converged(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface SitesOptions {
  aNamespace?: Record<string, unknown>;
  destination?: Record<string, unknown>;
  receiver?: Record<string, unknown>;
}

/** `broker` starts the Kafka in the sites' directory (helpers/kafka.ts `KafkaPerFile.broker`). */
export async function startSites(broker: (dir: string) => Promise<BrokerUnderTest>, opts: SitesOptions = {}): Promise<Sites> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-xdr-'));
  const ports = { a: await freePort(), b: await freePort(), receiver: await freePort() };
  const kafka = await broker(dir);
  const topic = `ferry.A.test${kafka.suffix}`;
  const group = `ferry-receiver-B${kafka.suffix}`;
  const topicKey = kafka.suffix ? { topic } : {};
  writeFileSync(join(dir, 'a.json'), JSON.stringify({
    namespaces: [{ name: 'test', filesize: 64 * 1024 * 1024, 'write-block-size': 262144, 'write-log-entries': 65536, 'nsup-period': 1, ...opts.aNamespace }],
    xdr: { site: 'A', destinations: [{ name: 'B', brokers: kafka.brokers, namespaces: ['test'], 'kafka-partitions': 4, 'checkpoint-interval-ms': 200, ...topicKey, ...opts.destination }] },
  }));
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ namespaces: [{ name: 'test', 'storage-engine': 'memory', fenced: true, 'nsup-period': 0 }] }));
  writeFileSync(join(dir, 'r.json'), JSON.stringify({ brokers: kafka.brokers, topics: [topic], destination: [`127.0.0.1:${ports.b}`], 'metrics-port': ports.receiver, 'group-id': group, ...opts.receiver }));
  const a = new FerryProcess('node A', ['node', '--config', join(dir, 'a.json'), '--data', join(dir, 'a'), '--port', String(ports.a)], /ferry node listening/);
  const b = new FerryProcess('node B', ['node', '--config', join(dir, 'b.json'), '--data', join(dir, 'b'), '--port', String(ports.b)], /ferry node listening/);
  const receiver = new FerryProcess('receiver', ['receiver', '--config', join(dir, 'r.json')], /ferry receiver ready/);
  await Promise.all([a.start(), b.start()]);
  const clientA0 = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.a }], tendIntervalMs: 0 });
  // The shipper creates the topic (4 partitions) before the receiver would auto-create it with one.
  await waitFor(async () => {
    const x = JSON.parse(await clientA0.infoValue('xdr-stats')) as { streams: Array<{ connected: boolean }> };
    return x.streams[0]?.connected === true;
  }, 60_000, 'the shipper of A to connect to Kafka').finally(() => clientA0.close());
  await receiver.start();
  const clientA = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.a }], tendIntervalMs: 0 });
  const clientB = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.b }], tendIntervalMs: 0 });
  const receiverStats = () => getJson<ReceiverStats>(`http://127.0.0.1:${ports.receiver}/stats`);
  const sites: Sites = {
    dir, broker: kafka, topic, group, a, b, receiver, ports, clientA, clientB, receiverStats,
    async xdrStats() {
      return JSON.parse(await sites.clientA.infoValue('xdr-stats')) as Awaited<ReturnType<Sites['xdrStats']>>;
    },
    async converged(timeoutMs = 60_000) {
      // Caught up = A has nothing left to ship, and a consumer-lag measurement started after
      // that moment says the receiver applied everything (lag is measured once a second).
      let shippedAt = 0;
      await waitFor(async () => {
        const x = await sites.xdrStats();
        if (x.streams.some((s) => s.recordsBehind > 0 || s.msBehind > 0)) {
          shippedAt = 0;
          return false;
        }
        if (shippedAt === 0) shippedAt = Date.now();
        const r = await receiverStats();
        return r.consumerLag === 0 && r.lagMeasuredAtMs > shippedAt;
      }, timeoutMs, 'A to ship everything and the receiver to apply it');
    },
    async close() {
      sites.clientA.close();
      sites.clientB.close();
      await Promise.all([receiver.stop('SIGKILL'), a.stop('SIGKILL'), b.stop('SIGKILL')]);
      await kafka.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return sites;
}
