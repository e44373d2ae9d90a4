/**
 * Test helper: sites that are clusters, as real processes. A site is `size` `ferry node`
 * processes on 127.0.0.1 joined by heartbeats (every node seeds from the first), sharing one
 * config file (namespace `test`, optionally an `xdr` section); plus helpers to wait for the
 * cluster to agree and for a whole site to have shipped everything.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerryProcess, freePort, waitFor } from '../helpers/procs.js';
import { parseKv, withNode } from '../../ops/util.js';

/** Membership settles within a few heartbeats; this bounds every wait for it. */
export const SITE_CONVERGE_TIMEOUT_MS = 30_000;

export interface SiteNode {
  proc: FerryProcess;
  port: number;
  hbPort: number;
  dir: string;
}

export interface SiteOptions {
  /** Site name: node ports and directories are per site. */
  name: string;
  size: number;
  /** Parent directory (the test's). */
  dir: string;
  /** Every process started is pushed here at once (the test's teardown kills them). */
  procs: FerryProcess[];
  namespace?: Record<string, unknown>;
  /** More namespaces beside `test` (full namespace objects). */
  extraNamespaces?: Array<Record<string, unknown>>;
  xdr?: Record<string, unknown>;
}

export const info = (port: number, cmd: string): Promise<string> => withNode({ host: '127.0.0.1', port }, 5000, (n) => n.info(cmd));

/** Starts the site's nodes one after the other and waits until they agree on one table. */
export async function startSite(o: SiteOptions): Promise<SiteNode[]> {
  const config = join(o.dir, `${o.name}.json`);
  writeFileSync(config, JSON.stringify({
    namespaces: [{ name: 'test', 'storage-engine': 'memory', 'nsup-period': 0, ...o.namespace }, ...(o.extraNamespaces ?? [])],
    ...(o.xdr ? { xdr: o.xdr } : {}),
  }));
  const nodes: SiteNode[] = [];
  for (let i = 0; i < o.size; i++) {
    const port = await freePort();
    const hbPort = await freePort();
    const dir = join(o.dir, `${o.name}${i}`);
    mkdirSync(dir, { recursive: true });
    const args = ['node', '--config', config, '--port', String(port), '--heartbeat-port', String(hbPort), '--data', dir];
    if (i > 0) args.push('--seed', `127.0.0.1:${nodes[0]!.hbPort}`);
    const proc = new FerryProcess(`${o.name}${i}`, args, /ferry node listening on /);
    o.procs.push(proc);
    nodes.push({ proc, port, hbPort, dir });
  }
  // The first node, then the others together (they all seed from it).
  await nodes[0]!.proc.start();
  await Promise.all(nodes.slice(1).map((n) => n.proc.start()));
  await siteAgrees(nodes);
  return nodes;
}

/** Waits until every running node of the site sees all of them, with no migration left. */
export async function siteAgrees(nodes: SiteNode[]): Promise<void> {
  const live = nodes.filter((n) => n.proc.running);
  let last = '';
  await waitFor(async () => {
    const s = await Promise.all(live.map(async (n) => parseKv(await info(n.port, 'statistics'))));
    const keys = new Set(s.map((x) => x.get('cluster_key')));
    last = s.map((x) => `size=${x.get('cluster_size')} key=${x.get('cluster_key')} migrations=${x.get('migrate_partitions_remaining')}`).join(' | ');
    return keys.size === 1 && s.every((x) => Number(x.get('cluster_size')) === live.length && x.get('migrate_partitions_remaining') === '0');
  }, SITE_CONVERGE_TIMEOUT_MS, `the ${live.length} nodes to agree on one cluster`).catch((err: Error) => {
    throw new Error(`${err.message}; last seen: ${last}`);
  });
}

export interface StreamStatsLite {
  connected: boolean;
  recordsBehind: number;
  msBehind: number;
  recoveringPartitions: number;
  masterPartitions: number;
  shipped: number;
  rpo0Timeouts?: number;
  rpo0Express?: number;
  checkpointWrites?: number;
}

export async function xdrStreams(port: number): Promise<StreamStatsLite[]> {
  return (JSON.parse(await info(port, 'xdr-stats')) as { streams: StreamStatsLite[] }).streams;
}

/** Waits until every running node of the site has nothing left to ship. */
export async function siteShipped(nodes: SiteNode[], timeoutMs: number): Promise<void> {
  await waitFor(async () => {
    for (const n of nodes.filter((x) => x.proc.running)) {
      const streams = await xdrStreams(n.port);
      if (streams.some((s) => s.recordsBehind > 0 || s.msBehind > 0 || s.recoveringPartitions > 0)) return false;
    }
    return true;
  }, timeoutMs, 'every node of the site to ship everything');
}

/** Starts the site's stopped nodes again (same ports, data and seeds), then waits for agreement. */
export async function restartSite(nodes: SiteNode[]): Promise<void> {
  for (const n of nodes) if (!n.proc.running) await n.proc.start();
  await siteAgrees(nodes);
}

/** A receiver applying `topic` to the site of `destination` (its metrics port answers /stats). */
export async function startReceiver(o: { dir: string; name: string; brokers: string[]; topic: string; destination: SiteNode[]; procs: FerryProcess[] }): Promise<{ proc: FerryProcess; url: string }> {
  const port = await freePort();
  const file = join(o.dir, `${o.name}.json`);
  writeFileSync(file, JSON.stringify({ brokers: o.brokers, topics: [o.topic], destination: o.destination.map((n) => `127.0.0.1:${n.port}`), 'metrics-port': port, 'group-id': `ferry-receiver-${o.name}` }));
  const proc = new FerryProcess(o.name, ['receiver', '--config', file], /ferry receiver ready/);
  o.procs.push(proc);
  await proc.start();
  return { proc, url: `http://127.0.0.1:${port}` };
}
