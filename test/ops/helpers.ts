/**
 * Test fixture for the operator commands: two sites as real processes started the way a user
 * starts them (`node bin/ferry.mjs ...`): a Kafka (the embedded broker or Apache Kafka, see
 * helpers/kafka.ts), node A shipping namespace `test`
 * to destination B, node B (fenced), and a receiver applying A's topic to B. Free ports, memory
 * storage, every wait bounded; `startSites(t, broker)` registers the cleanup in t.teardown.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import type { ReceiverStats } from '../../receiver/receiver.js';
import { FerryClient } from '../../store/client/client.js';
import type { BrokerUnderTest } from '../helpers/kafka.js';
import { FerryProcess as Proc, freePort } from '../helpers/procs.js';

/** A process gets this long to print its ready line. */
export const START_TIMEOUT_MS = 30_000;

export { freePort };

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** A CLI run gets this long to exit. */
export const CLI_TIMEOUT_MS = 30_000;


/** A long-running ferry process (the shared helper). */
export { Proc };

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ferry <args>` to its end. */
export async function runCli(args: string[], timeoutMs = CLI_TIMEOUT_MS): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/ferry.mjs', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferry ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts `ferry <args>`, resolves once `lines` lines are on stdout, then sends SIGINT and waits for the exit. */
export async function runUntilLines(args: string[], lines: number, timeoutMs = CLI_TIMEOUT_MS): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/ferry.mjs', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      if (!interrupted && stdout.split('\n').length - 1 >= lines) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferry ${args.join(' ')} did not give ${lines} lines and exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls `cond` until true, or throws after `timeoutMs` naming `what`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await cond()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Sites {
  dir: string;
  ports: { a: number; b: number; receiver: number };
  a: string;
  b: string;
  receiverUrl: string;
  brokers: string;
  group: string;
  topic: string;
  broker: BrokerUnderTest;
  nodeA: Proc;
  nodeB: Proc;
  receiver: Proc;
  clientA: FerryClient;
  clientB: FerryClient;
  receiverStats(): Promise<ReceiverStats>;
  /** A new receiver process with the same configuration (after the old one stopped). */
  restartReceiver(): Promise<void>;
}

/** `startBroker` starts the Kafka in the sites' directory (helpers/kafka.ts `KafkaPerFile.broker`). */
export async function startSites(t: ExecutionContext, startBroker: (dir: string) => Promise<BrokerUnderTest>): Promise<Sites> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-ops-'));
  const procs: Proc[] = [];
  const clients: FerryClient[] = [];
  let kafka: BrokerUnderTest | undefined;
  t.teardown(async () => {
    for (const c of clients) c.close();
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await kafka?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ports = { a: await freePort(), b: await freePort(), receiver: await freePort() };
  kafka = await startBroker(dir);
  const brokers = kafka.brokers.join(',');
  const group = `ferry-receiver-B${kafka.suffix}`;
  const topic = `ferry.A.test${kafka.suffix}`;
  const topicKey = kafka.suffix ? { topic } : {};
  writeFileSync(join(dir, 'a.json'), JSON.stringify({
    namespaces: [{ name: 'test', 'storage-engine': 'memory' }],
    xdr: { site: 'A', destinations: [{ name: 'B', brokers: kafka.brokers, namespaces: ['test'], 'kafka-partitions': 4, 'checkpoint-interval-ms': 200, ...topicKey }] },
  }));
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ namespaces: [{ name: 'test', 'storage-engine': 'memory', fenced: true }] }));
  writeFileSync(join(dir, 'r.json'), JSON.stringify({ brokers: kafka.brokers, topics: [topic], 'group-id': group, destination: [`127.0.0.1:${ports.b}`], 'metrics-port': ports.receiver }));
  const track = (p: Proc) => (procs.push(p), p);
  const nodeA = track(new Proc('node A', ['node', '--config', join(dir, 'a.json'), '--data', join(dir, 'a'), '--port', String(ports.a)], /ferry node listening/));
  const nodeB = track(new Proc('node B', ['node', '--config', join(dir, 'b.json'), '--data', join(dir, 'b'), '--port', String(ports.b)], /ferry node listening/));
  const newReceiver = () => track(new Proc('receiver', ['receiver', '--config', join(dir, 'r.json')], /ferry receiver ready/));
  await Promise.all([nodeA.start(), nodeB.start()]);
  const clientA = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.a }], tendIntervalMs: 0 });
  clients.push(clientA);
  const clientB = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.b }], tendIntervalMs: 0 });
  clients.push(clientB);
  // The shipper creates the topic (4 partitions) before the receiver would auto-create it with one.
  await waitFor(async () => {
    const x = JSON.parse(await clientA.infoValue('xdr-stats')) as { streams: Array<{ connected: boolean }> };
    return x.streams[0]?.connected === true;
  }, START_TIMEOUT_MS, 'the shipper of A to connect to the broker');
  const sites: Sites = {
    dir,
    ports,
    a: `127.0.0.1:${ports.a}`,
    b: `127.0.0.1:${ports.b}`,
    receiverUrl: `http://127.0.0.1:${ports.receiver}`,
    brokers,
    group,
    topic,
    broker: kafka,
    nodeA,
    nodeB,
    receiver: await newReceiver().start(),
    clientA,
    clientB,
    async receiverStats() {
      const res = await fetch(`${sites.receiverUrl}/stats`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`receiver /stats: HTTP ${res.status}`);
      return (await res.json()) as ReceiverStats;
    },
    async restartReceiver() {
      await sites.receiver.stop();
      sites.receiver = await newReceiver().start();
    },
  };
  return sites;
}
