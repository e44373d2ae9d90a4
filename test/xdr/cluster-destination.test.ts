/**
 * Receiving into a cluster, as real processes: the embedded broker, node A shipping namespace
 * `test`, a 3-node destination site B (replication factor 2, fenced) and two receivers in one
 * consumer group, each given all three B nodes. Under a write load on A one B node is killed
 * with -9 and restarted (its partitions move to the others and back, by migration): the
 * receivers apply through the smart client to each partition's current master and retry across
 * the change, both get Kafka partitions, nothing acknowledged is lost and `ferry verify` says
 * EQUAL.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { FerryClient } from '../../store/client/client.js';
import { FerryProcess, freePort, getJson, waitFor } from '../helpers/procs.js';
import { embeddedBroker, type BrokerUnderTest } from '../helpers/kafka.js';
import { testRandom } from '../helpers/seed.js';
import { ferryVerifyCli } from './chaos-harness.js';
import type { ReceiverStats } from '../../receiver/receiver.js';

const LOAD_MS = 6000;
const WRITERS = 8;
const KEYS = 3000;
/**
 * Generous for a few thousand records, and shorter than the destination's migrations after the
 * restart can take on a loaded machine: receivers that stalled until migrations finished (a
 * partition left with no known master in the client's map) fail here.
 */
const CONVERGE_TIMEOUT_MS = 60_000;

interface BNode {
  proc: FerryProcess;
  port: number;
  hbPort: number;
}

async function clusterSettled(ports: number[]): Promise<void> {
  await waitFor(async () => {
    const c = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports[0]! }], tendIntervalMs: 0 }).catch(() => undefined);
    if (!c) return false;
    try {
      const stats = await Promise.all(c.nodeIds().map((id) => c.infoValue('statistics', id)));
      return c.nodeIds().length === ports.length && stats.every((s) => s.includes(`cluster_size=${ports.length};`) && s.includes('migrate_partitions_remaining=0'));
    } catch {
      return false;
    } finally {
      c.close();
    }
  }, 60_000, `the ${ports.length}-node destination to form and finish migrating`);
}

test('a 3-node destination: two receivers in one group share the partitions, a destination node killed -9 under load loses nothing, ferry verify EQUAL', async (t) => {
  const rnd = testRandom(t);
  const t0 = Date.now();
  const phase = (what: string) => t.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-xdr-cluster-'));
  const procs: FerryProcess[] = [];
  const clients: FerryClient[] = [];
  let broker: BrokerUnderTest | undefined;
  try {
    broker = await embeddedBroker(dir);
    const aPort = await freePort();
    const aMetricsPort = await freePort();
    writeFileSync(join(dir, 'a.json'), JSON.stringify({
      namespaces: [{ name: 'test', 'storage-engine': 'memory', 'write-log-entries': 65536, 'nsup-period': 0 }],
      xdr: { site: 'A', destinations: [{ name: 'B', brokers: broker.brokers, namespaces: ['test'], 'kafka-partitions': 4, 'checkpoint-interval-ms': 200 }] },
    }));
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ namespaces: [{ name: 'test', 'storage-engine': 'memory', fenced: true, 'nsup-period': 0 }] }));
    const a = new FerryProcess('node A', ['node', '--config', join(dir, 'a.json'), '--data', join(dir, 'a'), '--port', String(aPort), '--metrics-port', String(aMetricsPort)], /ferry node listening/);
    procs.push(a);
    const bs: BNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const hbPort = await freePort();
      const args = ['node', '--config', join(dir, 'b.json'), '--data', join(dir, `b${i}`), '--port', String(port), '--heartbeat-port', String(hbPort)];
      if (i > 0) args.push('--seed', `127.0.0.1:${bs[0]!.hbPort}`);
      const proc = new FerryProcess(`node B${i}`, args, /ferry node listening/);
      procs.push(proc);
      bs.push({ proc, port, hbPort });
    }
    await a.start();
    for (const b of bs) await b.proc.start();
    await clusterSettled(bs.map((b) => b.port));
    phase('destination formed');

    const clientA = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: aPort }], tendIntervalMs: 0 });
    clients.push(clientA);
    // The shipper creates the 4-partition topic before a receiver could auto-create it.
    await waitFor(async () => (JSON.parse(await clientA.infoValue('xdr-stats')) as { streams: Array<{ connected: boolean }> }).streams[0]?.connected === true, 60_000, 'the shipper to connect');
    const receivers: Array<{ proc: FerryProcess; port: number }> = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      writeFileSync(join(dir, `r${i}.json`), JSON.stringify({
        brokers: broker.brokers, topics: ['ferry.A.test'], destination: bs.map((b) => `127.0.0.1:${b.port}`), 'metrics-port': port, 'group-id': 'ferry-receiver-B',
      }));
      const proc = new FerryProcess(`receiver ${i}`, ['receiver', '--config', join(dir, `r${i}.json`)], /ferry receiver ready/);
      procs.push(proc);
      receivers.push({ proc, port });
      await proc.start();
    }
    phase('receivers ready');
    const stats = (r: { port: number }) => getJson<ReceiverStats>(`http://127.0.0.1:${r.port}/stats`);

    // Load: puts of whole records; the ledger keeps each key's last acknowledged bins.
    const ledger = new Map<string, Record<string, unknown>>();
    const busy = new Set<string>();
    let acknowledged = 0;
    let stop = false;
    let n = 0;
    const writer = async () => {
      while (!stop) {
        const k = `k${rnd.int(KEYS)}`;
        if (busy.has(k)) continue;
        busy.add(k);
        const bins = { i: n, s: `v${n++}-${'x'.repeat(n % 40)}` };
        try {
          await clientA.put({ namespace: 'test', set: 'cl', key: k }, bins);
          ledger.set(k, bins);
          acknowledged++;
        } finally {
          busy.delete(k);
        }
      }
    };
    const load = Promise.all(Array.from({ length: WRITERS }, writer));
    // A's shipping lag per Kafka partition: one series per partition of the 4-partition topic,
    // adding up to the stream's records behind in the same scrape.
    const shipperLag = async () => {
      const text = await (await fetch(`http://127.0.0.1:${aMetricsPort}/metrics`)).text();
      const total = Number(/^ferry_xdr_records_behind\{[^}]*\} (\S+)$/m.exec(text)?.[1] ?? NaN);
      const per = [...text.matchAll(/^ferry_xdr_partition_records_behind\{[^}]*partition="(\d+)"[^}]*\} (\S+)$/gm)].map((m) => [Number(m[1]), Number(m[2])] as const);
      return { total, per };
    };
    const lagDuringLoad = await shipperLag();
    // Kill -9 one destination node (seeded pick, never the seed node) a third into the load;
    // restart it a second later (it comes back empty: memory storage, refilled by migration).
    await new Promise((r) => setTimeout(r, LOAD_MS / 3));
    const victim = bs[1 + rnd.int(2)]!;
    await victim.proc.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    await victim.proc.start();
    await new Promise((r) => setTimeout(r, (LOAD_MS * 2) / 3 - 1000));
    stop = true;
    await load;
    phase(`load done: ${acknowledged} acknowledged`);
    t.true(acknowledged > 500, `only ${acknowledged} writes acknowledged`);

    // Converged: A shipped everything and a lag measured after that is 0 on both receivers.
    let shippedAt = 0;
    let lastLog = 0;
    await waitFor(async () => {
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        const rs = await Promise.all(receivers.map(stats));
        phase(`waiting: ${await clientA.infoValue('xdr-stats')}; receivers ${rs.map((r) => `lag ${r.consumerLag} applied ${r.applied} lost ${r.lostConflict} retries ${r.retries} ${r.lastError}`).join(' | ')}`);
      }
      const x = JSON.parse(await clientA.infoValue('xdr-stats')) as { streams: Array<{ recordsBehind: number; msBehind: number }> };
      if (x.streams.some((s) => s.recordsBehind > 0 || s.msBehind > 0)) return (shippedAt = 0) !== 0;
      if (shippedAt === 0) shippedAt = Date.now();
      const rs = await Promise.all(receivers.map(stats));
      return rs.every((r) => r.consumerLag === 0 && r.lagMeasuredAtMs > shippedAt);
    }, CONVERGE_TIMEOUT_MS, 'A to ship everything and the receivers to apply it');
    phase('applied');
    await clusterSettled(bs.map((b) => b.port));
    phase('destination settled');

    const rs = await Promise.all(receivers.map(stats));
    t.true(rs.every((r) => r.applied > 0), `each receiver applies its share: applied ${rs.map((r) => r.applied).join(', ')}`);
    t.true(rs.every((r) => r.deadLettered === 0), 'nothing dead-lettered');
    // The group split the topic's 4 partitions between them, and each reports its own.
    const mine = rs.map((r) => (r.partitions ?? []).map((p) => p.partition));
    t.true(mine.every((ps) => ps.length > 0), `each receiver has partitions: ${JSON.stringify(mine)}`);
    t.deepEqual(mine.flat().sort(), [0, 1, 2, 3]);
    for (const [i, r] of receivers.entries()) {
      const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
      const series = [...text.matchAll(/^ferry_receiver_partition_consumer_lag\{[^}]*partition="(\d+)"[^}]*\} (\S+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]);
      t.deepEqual(series.map(([p]) => p).sort(), [...mine[i]!].sort(), `receiver ${i} /metrics: one lag series per partition it has`);
      t.true(series.every(([, lag]) => lag === 0));
    }
    for (const lag of [lagDuringLoad, await shipperLag()]) {
      t.deepEqual(lag.per.map(([p]) => p).sort(), [0, 1, 2, 3], 'node /metrics: one shipping-lag series per Kafka partition');
      t.is(lag.per.reduce((sum, [, v]) => sum + v, 0), lag.total, 'per-partition lag adds up to the stream total');
    }
    const verify = await ferryVerifyCli(aPort, bs[0]!.port);
    t.is(verify.code, 0, verify.output);
    t.regex(verify.output, /EQUAL/);
    phase('verified');
    // Every acknowledged write is on B with its bins (read through the smart client).
    const clientB = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: bs[0]!.port }], tendIntervalMs: 0 });
    clients.push(clientB);
    const missing: string[] = [];
    for (const [k, bins] of ledger) {
      const r = await clientB.get({ namespace: 'test', set: 'cl', key: k });
      if (!r || !isDeepStrictEqual({ i: Number(r.bins['i']), s: r.bins['s'] }, bins)) missing.push(`${k}: expected ${JSON.stringify(bins)}, B has ${r ? JSON.stringify({ i: String(r.bins['i']), s: r.bins['s'] }) : 'nothing'}`);
    }
    t.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${ledger.size} acknowledged writes missing at B (seed ${rnd.seed})`);
  } catch (err) {
    for (const p of procs.filter((x) => x.name.startsWith('receiver'))) t.log(`${p.name}: ${p.output.slice(-3000)}`);
    throw err;
  } finally {
    for (const c of clients) c.close();
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
