/**
 * A ferry cluster for the benchmarks: `ferry node` processes joined by heartbeats on 127.0.0.1,
 * info/statistics over the wire, a bounded wait until they agree, and the official client.
 */
import { type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../ops/free-port.js';
import { parseKv, withNode } from '../ops/util.js';
import { spawnPiped, waitForLine, withAttempts } from './harness.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const IN_FLIGHT = 50;
/** Every wait for a cluster to form or settle is bounded by this. */
export const SETTLE_TIMEOUT_MS = 300_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export interface FerryNodeProc {
  port: number;
  hbPort?: number;
  dataDir: string;
  args: string[];
  child: ChildProcess;
}

/** Extra node flags for every ferry process, as in bench/xdr-sites.ts, e.g. FERRY_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof". */
const NODE_ARGS = (process.env.FERRY_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

export async function startFerry(args: string[], port: number, dataDir: string, hbPort?: number): Promise<FerryNodeProc> {
  const child = spawnPiped(process.execPath, [...NODE_ARGS, 'bin/ferry.mjs', ...args], ROOT);
  await waitForLine(child, /ferry node listening on/, `ferry node on ${port}`);
  return { port, dataDir, args, child, ...(hbPort !== undefined ? { hbPort } : {}) };
}

export async function newFerryNode(seedHbPort?: number, clustered = true, extra: string[] = []): Promise<FerryNodeProc> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ferry-bench-cluster-'));
  const port = await freePort();
  const args = ['node', '--port', String(port), '--data', dataDir, ...extra];
  let hbPort: number | undefined;
  if (clustered) {
    hbPort = await freePort();
    args.push('--heartbeat-port', String(hbPort));
    if (seedHbPort !== undefined) args.push('--seed', `127.0.0.1:${seedHbPort}`);
  }
  return startFerry(args, port, dataDir, hbPort);
}

export const info = (port: number, cmd: string): Promise<string> => withNode({ host: '127.0.0.1', port }, 5000, (n) => n.info(cmd));
export const stats = async (port: number): Promise<Map<string, string>> => parseKv(await info(port, 'statistics'));

/** Every live node reports the same key, `size` members, no migrations left, and cluster-stable. */
export async function settled(nodes: FerryNodeProc[], size: number): Promise<void> {
  await waitUntil(
    async () => {
      const s = await Promise.all(nodes.map((n) => stats(n.port)));
      const keys = new Set(s.map((x) => x.get('cluster_key')));
      if (keys.size !== 1 || !s.every((x) => Number(x.get('cluster_size')) === size && x.get('migrate_partitions_remaining') === '0')) return false;
      return (await info(nodes[0]!.port, 'cluster-stable')) === s[0]!.get('cluster_key');
    },
    SETTLE_TIMEOUT_MS,
    `${size} ferry nodes to agree and finish migrating`,
  );
}

export async function connect(Aerospike: Any, port: number): Promise<Any> {
  return Aerospike.connect({
    hosts: [{ addr: '127.0.0.1', port }],
    log: { level: Aerospike.log.OFF },
    maxConnsPerNode: IN_FLIGHT * 2,
    policies: { read: { totalTimeout: 5000 }, write: { totalTimeout: 5000 } },
  });
}


/** Puts applied before a load gives up on one record (a timeout on a loaded machine is retried; the put is idempotent). */
const LOAD_ATTEMPTS = 5;

/** Writes records 0..count-1 of `set` once, `valueBytes` each, IN_FLIGHT at a time. */
export async function loadRecords(client: Any, Aerospike: Any, ns: string, set: string, count: number, valueBytes: number): Promise<void> {
  const value = Buffer.alloc(valueBytes, 0x61).toString('latin1');
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < count) {
        const key = new Aerospike.Key(ns, set, next++);
        await withAttempts(LOAD_ATTEMPTS, () => client.put(key, { v: value }));
      }
    }),
  );
}
