/**
 * Two XDR sites for the benchmark, as real processes started the way a user starts them
 * (`node bin/ferry.mjs <command> ...`): the embedded broker, node A shipping to B, node B (fenced,
 * passive, memory storage) and a receiver applying A's topic to B. Every wait is bounded; close()
 * kills everything and removes the temp directory.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaCluster, type KafkaNode } from '../scripts/kafka/cluster.js';
import { FerryClient } from '../store/index.js';
import type { ReceiverStats } from '../receiver/receiver.js';
import { freePort } from '../ops/free-port.js';
import { FerryProcess } from '../ops/ferry-process.js';

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
}

export interface BenchSites {
  dir: string;
  broker: BenchProc;
  a: BenchProcess;
  b: BenchProcess;
  receiver: BenchProcess;
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
    const ports = { broker: await freePort(), a: await freePort(), b: await freePort(), receiver: await freePort() };
    let cluster: KafkaCluster | undefined;
    if (opts.kafka === 'apache') {
      cluster = await KafkaCluster.start({ nodes: 1, dir: join(dir, 'kafka'), quickJvm: false, heapMb: 1024 });
      ports.broker = cluster.nodes[0]!.ports.client;
    }
    const brokerAddr = `127.0.0.1:${ports.broker}`;
    writeFileSync(join(dir, 'a.json'), JSON.stringify({
      namespaces: [{ name: 'test', filesize: Math.max(64 * MiB, opts.storeBytes), 'nsup-period': 0 }],
      xdr: { site: 'A', destinations: [{ name: 'B', brokers: [brokerAddr], namespaces: ['test'], ...(opts.compression ? { compression: opts.compression } : {}) }] },
    }));
    writeFileSync(join(dir, 'b.json'), JSON.stringify({
      namespaces: [{ name: 'test', 'storage-engine': 'memory', 'memory-size': Math.max(64 * MiB, opts.storeBytes), fenced: true, 'nsup-period': 0 }],
    }));
    writeFileSync(join(dir, 'r.json'), JSON.stringify({
      brokers: [brokerAddr], topics: ['ferry.A.test'], destination: [`127.0.0.1:${ports.b}`], 'metrics-port': ports.receiver, 'group-id': 'ferry-receiver-B',
    }));
    const broker: BenchProc = cluster ? new ApacheKafkaProc(cluster.nodes[0]!) : new BenchProcess('broker', ['broker', '--data', join(dir, 'broker'), '--port', String(ports.broker)], /listening/);
    const a = new BenchProcess('node A', ['node', '--config', join(dir, 'a.json'), '--data', join(dir, 'a'), '--port', String(ports.a)], /ferry node listening/);
    const b = new BenchProcess('node B', ['node', '--config', join(dir, 'b.json'), '--data', join(dir, 'b'), '--port', String(ports.b)], /ferry node listening/);
    const receiver = new BenchProcess('receiver', ['receiver', '--config', join(dir, 'r.json')], /ferry receiver ready/);
    procs.push(broker, a, b, receiver);
    await broker.start();
    await Promise.all([a.start(), b.start()]);
    await receiver.start();
    const clientA = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.a }], tendIntervalMs: 0, maxConnsPerNode: opts.writeConnections });
    clients.push(clientA);
    const clientB = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.b }], tendIntervalMs: 0 });
    clients.push(clientB);
    const receiverStats = (): Promise<ReceiverStats> => getJson<ReceiverStats>(`http://127.0.0.1:${ports.receiver}/stats`);
    const xdrStats = async (): Promise<{ streams: XdrStream[] }> => JSON.parse(await clientA.infoValue('xdr-stats')) as { streams: XdrStream[] };
    return {
      dir, broker, a, b, receiver, procs, clientA, clientB, receiverStats, xdrStats, closeNow,
      async drained() {
        const x = await xdrStats();
        if (x.streams.some((s) => s.recordsBehind > 0 || s.msBehind > 0)) return false;
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
