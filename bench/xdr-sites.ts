/**
 * Two XDR sites for the benchmark, as real processes started the way a user starts them
 * (`node bin/ferry.mjs <command> ...`): the embedded broker, site A (`nodes` nodes, device
 * storage) shipping to B, site B (`nodes` nodes, fenced, passive, memory storage) and a receiver
 * applying A's topic to B. A site of more than one node is a cluster (heartbeats on 127.0.0.1,
 * every node seeds from the first, replication factor 2). With `shipBack`, B also ships to A
 * (topic ferry.B.test) and a second receiver applies it to A, as failback needs. Every wait is
 * bounded; close() kills everything and removes the temp directory.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaCluster, type KafkaNode } from '../scripts/kafka/cluster.js';
import { FerryClient } from '../store/index.js';
import type { ReceiverStats } from '../receiver/receiver.js';
import { freePort } from '../ops/free-port.js';
import { FerryProcess } from '../ops/ferry-process.js';
import { parseKv, withNode } from '../ops/util.js';

const MiB = 1024 * 1024;
const CLOCK_TICKS_PER_S = 100;
/** Extra node flags for every ferry process, e.g. FERRY_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const NODE_ARGS = (process.env.FERRY_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

export class SitesError extends Error {
  readonly code = 'BENCH_SITES';
  constructor(message: string) {
    super(message);
    this.name = 'SitesError';
  }
}


export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One ferry process (the shared helper) with its CPU time; start() may be called again after stop(). */
export class BenchProcess extends FerryProcess {
  constructor(name: string, args: string[], ready: RegExp) {
    super(name, args, ready, { nodeArgs: NODE_ARGS });
  }

  /** CPU seconds (user + system) used so far, from /proc; 0 where unavailable. */
  cpuSeconds(): number {
    if (!this.running) return 0;
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_S;
    } catch {
      return 0;
    }
  }
}

/** What the benchmark needs of a process: start/stop it, kill it from an exit handler, its CPU. */
export interface BenchProc extends Pick<BenchProcess, 'name' | 'running' | 'stop' | 'killNow' | 'cpuSeconds'> {
  start(): Promise<unknown>;
}

/** The Kafka node of an Apache Kafka run, seen as a BenchProc (scripts/kafka/cluster.ts). */
class ApacheKafkaProc implements BenchProc {
  readonly name = 'kafka';
  constructor(private readonly node: KafkaNode) {}
  get running(): boolean {
    return this.node.running;
  }
  start(): Promise<void> {
    return this.node.start();
  }
  stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    return this.node.stop(signal);
  }
  killNow(): void {
    const pid = this.node.pid;
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
  }
  cpuSeconds(): number {
    const pid = this.node.pid;
    if (pid === undefined) return 0;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_S;
    } catch {
      return 0;
    }
  }
}

export interface XdrStream {
  recordsBehind: number;
  msBehind: number;
  shipped: number;
  shippedPerS: number;
  retries: number;
  errors: number;
  /** Partitions a new master is still scanning from their checkpoint (clusters). */
  recoveringPartitions?: number;
}

export interface BenchSites {
  dir: string;
  broker: BenchProc;
  /** `host:port` of the broker. */
  brokerAddr: string;
  /** The first node of each site. */
  a: BenchProcess;
  b: BenchProcess;
  /** Every node of each site, with its client port. */
  aNodes: BenchProcess[];
  bNodes: BenchProcess[];
  aPorts: number[];
  bPorts: number[];
  receiver: BenchProcess;
  /** The receiver's base URL (its /stats). */
  receiverUrl: string;
  /** With shipBack: the receiver applying B's topic to A, and its base URL. */
  receiverBA?: BenchProcess;
  receiverBAUrl?: string;
  procs: BenchProc[];
  /** Writes go here. */
  clientA: FerryClient;
  /** Probes read here. */
  clientB: FerryClient;
  receiverStats(): Promise<ReceiverStats>;
  xdrStats(): Promise<{ streams: XdrStream[] }>;
  /** True when A has shipped everything and the receiver has applied everything it consumed. */
  drained(): Promise<boolean>;
  close(): Promise<void>;
  /** Synchronous kill + temp dir removal, for exit handlers. */
  closeNow(): void;
}

export interface SitesOptions {
  /** Connections the writing client may open to A (one request in flight per connection). */
  writeConnections: number;
  /** Bytes of A's device file and of B's memory namespace. */
  storeBytes: number;
  /** Shipper compression; the product default (gzip) when absent. */
  compression?: 'gzip' | 'none';
  /** ferry's embedded broker (default) or a 1-node Apache Kafka (full JIT, 1 GiB heap). */
  kafka?: 'embedded' | 'apache';
  /** Nodes per site (default 1: one node each, no heartbeats). */
  nodes?: number;
  /** Sets whose client writes on A are acknowledged only once in Kafka (the destination's rpo0-sets). */
  rpo0Sets?: string[];
  /** B ships to A too (topic ferry.B.test) and a receiver applies it to A. */
  shipBack?: boolean;
}

/** Waits until every running node of a site sees all of them, with no migration left. */
async function siteSettled(ports: number[], timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const s = await Promise.all(ports.map(async (port) => parseKv(await withNode({ host: '127.0.0.1', port }, 5000, (n) => n.info('statistics')))));
      last = s.map((x) => `size=${x.get('cluster_size')} migrations=${x.get('migrate_partitions_remaining')}`).join(' | ');
      const keys = new Set(s.map((x) => x.get('cluster_key')));
      if (keys.size === 1 && s.every((x) => Number(x.get('cluster_size')) === ports.length && x.get('migrate_partitions_remaining') === '0')) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > end) throw new SitesError(`timed out after ${timeoutMs} ms waiting for ${what} to agree; last seen: ${last}`);
    await sleep(100);
  }
}

/** Bounds waiting for a site's nodes to agree on one cluster. */
export const SITE_SETTLE_TIMEOUT_MS = 120_000;

/** `count` node processes of one site; nodes after the first seed from it when count > 1. */
async function siteNodes(site: 'A' | 'B', count: number, config: string, dir: string): Promise<{ nodes: BenchProcess[]; ports: number[] }> {
  const nodes: BenchProcess[] = [];
  const ports: number[] = [];
  let seed: number | undefined;
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    const args = ['node', '--config', config, '--data', join(dir, count > 1 ? `${site.toLowerCase()}${i}` : site.toLowerCase()), '--port', String(port)];
    if (count > 1) {
      const hb = await freePort();
      args.push('--heartbeat-port', String(hb));
      if (seed !== undefined) args.push('--seed', `127.0.0.1:${seed}`);
      else seed = hb;
    }
    nodes.push(new BenchProcess(count > 1 ? `${site}${i}` : `node ${site}`, args, /ferry node listening/));
    ports.push(port);
  }
  return { nodes, ports };
}

async function getJson<T>(url: string, timeoutMs = 5000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new SitesError(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/**
 * Starts the four processes. Shipping uses the product's defaults (batch-max 2000, linger 2 ms,
 * gzip, 16 Kafka partitions, retry backoff up to 5 s); the receiver its defaults (apply
 * concurrency 64).
 */
export async function startBenchSites(opts: SitesOptions): Promise<BenchSites> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-xdr-'));
  const procs: BenchProc[] = [];
  const clients: FerryClient[] = [];
  const closeNow = (): void => {
    for (const c of clients) c.close();
    for (const p of procs) p.killNow();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const count = opts.nodes ?? 1;
    const ports = { broker: await freePort(), receiver: await freePort(), receiverBA: await freePort() };
    let cluster: KafkaCluster | undefined;
    if (opts.kafka === 'apache') {
      cluster = await KafkaCluster.start({ nodes: 1, dir: join(dir, 'kafka'), quickJvm: false, heapMb: 1024 });
      ports.broker = cluster.nodes[0]!.ports.client;
    }
    const brokerAddr = `127.0.0.1:${ports.broker}`;
    const rpo0 = opts.rpo0Sets && opts.rpo0Sets.length > 0 ? { 'rpo0-sets': opts.rpo0Sets } : {};
    writeFileSync(join(dir, 'a.json'), JSON.stringify({
      namespaces: [{ name: 'test', filesize: Math.max(64 * MiB, opts.storeBytes), 'nsup-period': 0 }],
      xdr: { site: 'A', destinations: [{ name: 'B', brokers: [brokerAddr], namespaces: ['test'], ...rpo0, ...(opts.compression ? { compression: opts.compression } : {}) }] },
    }));
    writeFileSync(join(dir, 'b.json'), JSON.stringify({
      namespaces: [{ name: 'test', 'storage-engine': 'memory', 'memory-size': Math.max(64 * MiB, opts.storeBytes), fenced: true, 'nsup-period': 0 }],
      ...(opts.shipBack ? { xdr: { site: 'B', destinations: [{ name: 'A', brokers: [brokerAddr], namespaces: ['test'], topic: 'ferry.B.test' }] } } : {}),
    }));
    const siteA = await siteNodes('A', count, join(dir, 'a.json'), dir);
    const siteB = await siteNodes('B', count, join(dir, 'b.json'), dir);
    writeFileSync(join(dir, 'r.json'), JSON.stringify({
      brokers: [brokerAddr], topics: ['ferry.A.test'], destination: siteB.ports.map((p) => `127.0.0.1:${p}`), 'metrics-port': ports.receiver, 'group-id': 'ferry-receiver-B',
    }));
    writeFileSync(join(dir, 'rba.json'), JSON.stringify({
      brokers: [brokerAddr], topics: ['ferry.B.test'], destination: siteA.ports.map((p) => `127.0.0.1:${p}`), 'metrics-port': ports.receiverBA, 'group-id': 'ferry-receiver-A',
    }));
    const broker: BenchProc = cluster ? new ApacheKafkaProc(cluster.nodes[0]!) : new BenchProcess('broker', ['broker', '--data', join(dir, 'broker'), '--port', String(ports.broker)], /listening/);
    const receiver = new BenchProcess('receiver', ['receiver', '--config', join(dir, 'r.json')], /ferry receiver ready/);
    const receiverBA = opts.shipBack ? new BenchProcess('receiver BA', ['receiver', '--config', join(dir, 'rba.json')], /ferry receiver ready/) : undefined;
    procs.push(broker, ...siteA.nodes, ...siteB.nodes, receiver, ...(receiverBA ? [receiverBA] : []));
    await broker.start();
    // The first node of each site, then the others (they seed from it).
    await Promise.all([siteA.nodes[0]!.start(), siteB.nodes[0]!.start()]);
    await Promise.all([...siteA.nodes.slice(1), ...siteB.nodes.slice(1)].map((n) => n.start()));
    if (count > 1) await Promise.all([siteSettled(siteA.ports, SITE_SETTLE_TIMEOUT_MS, 'site A'), siteSettled(siteB.ports, SITE_SETTLE_TIMEOUT_MS, 'site B')]);
    await receiver.start();
    if (receiverBA) {
      // B's shippers create its topic once connected; the receiver of that topic starts after.
      const end = Date.now() + SITE_SETTLE_TIMEOUT_MS;
      for (const port of siteB.ports) {
        for (;;) {
          const info = await withNode({ host: '127.0.0.1', port }, 5000, (n) => n.info('xdr-stats')).catch(() => '{"streams":[]}');
          if ((JSON.parse(info) as { streams: Array<{ connected?: boolean }> }).streams[0]?.connected === true) break;
          if (Date.now() > end) throw new SitesError(`B's shipper on port ${port} did not connect to the broker within ${SITE_SETTLE_TIMEOUT_MS} ms`);
          await sleep(100);
        }
      }
      await receiverBA.start();
    }
    const hosts = (ps: number[]): Array<{ host: string; port: number }> => ps.map((port) => ({ host: '127.0.0.1', port }));
    // One node: the partition map read once; a cluster: tended (the client follows masters).
    const tendIntervalMs = count > 1 ? 1000 : 0;
    const clientA = await FerryClient.connect({ hosts: hosts(siteA.ports), tendIntervalMs, maxConnsPerNode: opts.writeConnections });
    clients.push(clientA);
    const clientB = await FerryClient.connect({ hosts: hosts(siteB.ports), tendIntervalMs });
    clients.push(clientB);
    const receiverUrl = `http://127.0.0.1:${ports.receiver}`;
    const receiverStats = (): Promise<ReceiverStats> => getJson<ReceiverStats>(`${receiverUrl}/stats`);
    const nodeStreams = async (port: number): Promise<XdrStream[]> =>
      (JSON.parse(await withNode({ host: '127.0.0.1', port }, 5000, (n) => n.info('xdr-stats'))) as { streams: XdrStream[] }).streams;
    const liveA = (): number[] => siteA.ports.filter((_, i) => siteA.nodes[i]!.running);
    // Every running node of A; a node that does not answer is left out (the monitor samples on).
    const xdrStats = async (): Promise<{ streams: XdrStream[] }> => {
      const all = await Promise.allSettled(liveA().map(nodeStreams));
      return { streams: all.flatMap((r) => (r.status === 'fulfilled' ? r.value : [])) };
    };
    return {
      dir, broker, brokerAddr, a: siteA.nodes[0]!, b: siteB.nodes[0]!, aNodes: siteA.nodes, bNodes: siteB.nodes, aPorts: siteA.ports, bPorts: siteB.ports,
      receiver, receiverUrl, ...(receiverBA ? { receiverBA, receiverBAUrl: `http://127.0.0.1:${ports.receiverBA}` } : {}),
      procs, clientA, clientB, receiverStats, xdrStats, closeNow,
      async drained() {
        // Strict: every running node of A answers and has nothing left to ship.
        for (const port of liveA()) {
          if ((await nodeStreams(port)).some((s) => s.recordsBehind > 0 || s.msBehind > 0 || (s.recoveringPartitions ?? 0) > 0)) return false;
        }
        return (await receiverStats()).consumerLag === 0;
      },
      async close() {
        for (const c of clients) c.close();
        // SIGTERM first (a clean stop lets --cpu-prof in NODE_OPTIONS write its profiles), SIGKILL after STOP_TIMEOUT_MS.
        await Promise.all(procs.map((p) => p.stop('SIGTERM')));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    closeNow();
    throw err;
  }
}
