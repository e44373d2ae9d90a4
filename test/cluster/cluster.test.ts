/**
 * A real 3-node cluster (three `ferry node` processes on 127.0.0.1 joined by heartbeats) and the
 * official client. The processes are shared by the tests below, which run in order: discovery
 * and one-hop routing, a refused cluster-name, then a node killed and the others re-forming.
 */
import test from 'ava';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FerryProcess, ROOT, freePort, waitFor } from '../helpers/procs.js';
import { parseKv, withNode } from '../../ops/util.js';
import { computePartitionTable } from '../../store/cluster/partition-table.js';
import { computeDigest, partitionOf } from '../../store/digest.js';
import { FerryClient } from '../../store/client/client.js';
import { opsToBins } from '../../store/wire/command.js';
import { decodeMsg, emptyHeader, encodeMsgFrame, field, FieldType, Info1 } from '../../store/wire/message.js';
import { FrameParser } from '../../store/wire/proto.js';
import { ResultCode } from '../../store/types.js';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');
const execFileP = promisify(execFile);
const ns = 'test';
const set = 'cl';
/** Membership settles within a few heartbeats; this bounds every wait for it. */
const CONVERGE_TIMEOUT_MS = 20_000;
/** The official client's default tend interval, and rounds of replica-ANY reads before giving up. */
const CLIENT_TEND_MS = 1500;
/** Longer than two periods of the version exchange's full state (1 s). */
const IDLE_GENERATION_WAIT_MS = 2500;
const ANY_READ_ROUNDS = 3;

interface ClusterNode {
  proc: FerryProcess;
  port: number;
  hbPort: number;
  metricsPort: number;
  id: string;
}
const dirs: string[] = [];
/** The namespace's replication factor (the default). */
const RF = 2;
const tableOf = (members: ClusterNode[], rf = RF) => computePartitionTable(members.map((n) => ({ nodeId: n.id })), rf);
/** Node ids holding key k (master first) under `table`. */
const holders = (table: ReturnType<typeof tableOf>, k: string): string[] => {
  const pid = partitionOf(computeDigest(set, k));
  return Array.from({ length: table.replicationFactor }, (_, i) => table.nodeAt(pid, i));
};
const setObjects = async (port: number): Promise<number> => Number(/objects=(\d+)/.exec(await info(port, `sets/${ns}/${set}`))?.[1] ?? 0);
const nodes: ClusterNode[] = [];

async function startMember(seed: number | undefined, env: Record<string, string> = {}): Promise<ClusterNode> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferry-cluster-'));
  dirs.push(dir);
  const port = await freePort();
  const hbPort = await freePort();
  const metricsPort = await freePort();
  const args = ['node', '--port', String(port), '--heartbeat-port', String(hbPort), '--metrics-port', String(metricsPort), '--data', dir, '--storage', 'memory'];
  if (seed !== undefined) args.push('--seed', `127.0.0.1:${seed}`);
  const proc = new FerryProcess(`node ${port}`, args, /ferry node heartbeat on .*\n[^]*ferry node listening on /, env);
  await proc.start();
  const id = await info(port, 'node');
  return { proc, port, hbPort, metricsPort, id };
}

const info = (port: number, cmd: string): Promise<string> => withNode({ host: '127.0.0.1', port }, 5000, (n) => n.info(cmd));
const stats = async (port: number, cmd = 'statistics'): Promise<Map<string, string>> => parseKv(await info(port, cmd));

/** Waits until every given node reports the same cluster key and size; returns the key. */
async function converged(members: ClusterNode[]): Promise<string> {
  let key = '';
  await waitFor(
    async () => {
      const s = await Promise.all(members.map((m) => stats(m.port)));
      const keys = new Set(s.map((x) => x.get('cluster_key')));
      key = s[0]!.get('cluster_key')!;
      return (
        keys.size === 1 &&
        s.every((x) => Number(x.get('cluster_size')) === members.length && x.get('migrate_partitions_remaining') === '0') &&
        (await info(members[0]!.port, 'cluster-stable')) === key
      );
    },
    CONVERGE_TIMEOUT_MS,
    `${members.length} nodes to agree on one cluster and finish migrating`,
  );
  return key;
}

/** One AS_MSG to one node over a raw socket (no client routing); returns the response body. */
function rawCommand(port: number, frame: Buffer): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(frame));
    const p = new FrameParser();
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no reply'));
    }, 5000);
    s.on('data', (chunk: Buffer) => {
      const f = p.push(chunk)[0];
      if (f) {
        clearTimeout(timer);
        s.destroy();
        resolve(f.body);
      }
    });
    s.on('error', reject);
  });
}

/** A read of key k served by the node at `port` itself (it holds a copy, so it does not forward). */
async function readOn(port: number, k: string): Promise<{ resultCode: number; value?: string }> {
  const frame = encodeMsgFrame({ ...emptyHeader(), info1: Info1.READ | Info1.GET_ALL }, [field(FieldType.NAMESPACE, ns), field(FieldType.SET, set), field(FieldType.DIGEST, computeDigest(set, k))]);
  const reply = decodeMsg(await rawCommand(port, frame));
  const bin = opsToBins(reply.ops).find((b) => b.name === 'k');
  return bin ? { resultCode: reply.resultCode, value: bin.bytes.toString() } : { resultCode: reply.resultCode };
}

/** Every key has its value on each of its holders under the members' current table. */
async function assertCopies(t: { deepEqual(a: unknown, b: unknown, m?: string): void }, members: ClusterNode[], keys: string[]): Promise<void> {
  const table = tableOf(members);
  const ports = new Map(members.map((m) => [m.id, m.port]));
  for (const k of keys) {
    const got = await Promise.all(holders(table, k).map((id) => readOn(ports.get(id)!, k)));
    t.deepEqual(got, holders(table, k).map(() => ({ resultCode: ResultCode.OK, value: k })), `copies of ${k}`);
  }
}

let client: Any;
let firstKey = '';

test.before(async () => {
  const a = await startMember(undefined);
  nodes.push(a);
  nodes.push(await startMember(a.hbPort), await startMember(a.hbPort));
  firstKey = await converged(nodes);
  client = await Aerospike.connect({ hosts: [{ addr: '127.0.0.1', port: a.port }], log: { level: Aerospike.log.OFF } });
});

test.after.always(async () => {
  await client?.close();
  await Promise.all(nodes.map((n) => n.proc.stop()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test.serial('the client finds all three nodes from one seed; every record has two copies, master first', async (t) => {
  t.is(client.getNodes().length, 3);
  const table = tableOf(nodes);
  t.is(table.clusterKey, firstKey, 'every node derives the key from the same member list');
  const keys = Array.from({ length: 150 }, (_, i) => `k${i}`);
  for (const k of keys) await client.put(new Aerospike.Key(ns, set, k), { k });
  const expected = new Map(nodes.map((n) => [n.id, 0]));
  for (const k of keys) {
    const h = holders(table, k);
    t.is(new Set(h).size, 2);
    for (const id of h) expected.set(id, expected.get(id)! + 1);
  }
  let copies = 0;
  for (const n of nodes) {
    const objects = await setObjects(n.port);
    copies += objects;
    t.is(objects, expected.get(n.id)!, `node ${n.id} holds exactly the keys it masters or replicates`);
    t.true(objects > 0);
    const wire = await stats(n.port, 'ferry-wire');
    t.is(wire.get('not_owner'), '0', `node ${n.id} got no command for a partition it does not master`);
  }
  t.is(copies, RF * keys.length);
  for (const n of nodes) {
    const nsInfo = await stats(n.port, `namespace/${ns}`);
    t.is(nsInfo.get('replication-factor'), String(RF));
    t.is(nsInfo.get('effective_replication_factor'), String(RF));
    t.is(Number(nsInfo.get('master_objects')), keys.filter((k) => holders(table, k)[0] === n.id).length, `master objects of ${n.id}`);
    t.is(Number(nsInfo.get('prole_objects')), keys.filter((k) => holders(table, k)[1] === n.id).length, `replica objects of ${n.id}`);
  }
  const replicated = await Promise.all(nodes.map(async (n) => Number((await stats(n.port)).get('replica_writes_applied'))));
  t.is(replicated.reduce((a, b) => a + b, 0), keys.length, 'one replica write per put');
  for (const k of keys) t.is((await client.get(new Aerospike.Key(ns, set, k))).bins.k, k);
  // Reads with replica policy ANY are spread over both copies and served where they land.
  const readsOf = async (): Promise<number[]> => Promise.all(nodes.map(async (n) => Number((await stats(n.port, 'ferry-wire')).get('reads'))));
  // The client learns replicas from each node's `replicas` map at its tend (every second); on a
  // loaded machine its map may still lack them for a round, so a round served by masters only is
  // repeated after a tend, a few times at most.
  const any = { replica: Aerospike.policy.replica.ANY };
  const masters = nodes.map((n) => keys.filter((k) => holders(table, k)[0] === n.id).length);
  let readsDelta: number[] = [];
  for (let round = 0; round < ANY_READ_ROUNDS; round++) {
    if (round > 0) await new Promise((r) => setTimeout(r, CLIENT_TEND_MS));
    const readsBefore = await readsOf();
    for (const k of keys) t.is((await client.get(new Aerospike.Key(ns, set, k), any)).bins.k, k);
    readsDelta = (await readsOf()).map((r, i) => r - readsBefore[i]!);
    t.is(readsDelta.reduce((a, b) => a + b, 0), keys.length);
    if (readsDelta.some((r, i) => r !== masters[i])) break;
  }
  t.notDeepEqual(readsDelta, masters, 'some reads were served by replicas');
  const seen: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = client.scan(ns, set).foreach();
    s.on('data', (r: Any) => seen.push(r.bins.k));
    s.on('error', reject);
    s.on('end', () => resolve());
  });
  t.deepEqual(seen.sort(), [...keys].sort(), 'the scan covers every partition once');
  const batch = await client.batchRead(keys.map((k) => ({ key: new Aerospike.Key(ns, set, k), readAllBins: true })));
  t.deepEqual(batch.map((r: Any) => r.record.bins.k), keys);
  const peers = await info(nodes[0]!.port, 'peers-clear-std');
  for (const n of nodes.slice(1)) t.true(peers.includes(`[${n.id},,[127.0.0.1:${n.port}]]`), peers);
  for (const n of nodes) t.is((await stats(n.port, 'ferry-wire')).get('proxied'), '0', 'a fresh map needs no proxying');
});

test.serial('partition-generation stays put on a settled cluster (pulses and the periodic version exchange do not move it)', async (t) => {
  // The full version state every node sends each second used to count as a role change: every
  // node's partition-generation went up each second and every client fetched the map again.
  const snapshot = async (): Promise<string[]> => Promise.all(nodes.map(async (n) => `${await info(n.port, 'partition-generation')}@${(await stats(n.port)).get('cluster_key')}`));
  let before: string[] = [];
  let after: string[] = [];
  // A membership change on a loaded machine (a late pulse) legitimately moves it: measured again then.
  for (let attempt = 0; attempt < 3; attempt++) {
    before = await snapshot();
    await new Promise((r) => setTimeout(r, IDLE_GENERATION_WAIT_MS));
    after = await snapshot();
    const keys = new Set([...before, ...after].map((x) => x.split('@')[1]));
    if (keys.size === 1) break;
  }
  t.deepEqual(after, before, 'partition-generation@cluster_key of each node before and after an idle wait');
});

test.serial('`ferry cluster` lists the members with their partition counts, as text and JSON', async (t) => {
  const run = (args: string[]) => execFileP(process.execPath, ['bin/ferry.mjs', 'cluster', '--node', `127.0.0.1:${nodes[2]!.port}`, ...args], { cwd: ROOT, timeout: 30_000 });
  const { stdout } = await run(['--json']);
  const r = JSON.parse(stdout) as { agreed: boolean; view: { clusterKey: string; members: Array<{ nodeId: string; master: number; replica: number }> } };
  t.true(r.agreed);
  t.is(r.view.clusterKey, firstKey);
  t.deepEqual(
    r.view.members.map((m) => [m.nodeId, m.master, m.replica]),
    tableOf(nodes).counts().map((c) => [c.nodeId, c.master, c.replica]),
  );
  const metrics = await (await fetch(`http://127.0.0.1:${nodes[0]!.metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  t.regex(metrics, /^ferry_cluster_size 3$/m);
  t.regex(metrics, /^ferry_cluster_replica_writes_sent [1-9]\d*$/m, 'node 0 mastered some of the puts');
  t.regex(metrics, /^ferry_cluster_replica_write_latency_mean_ms [\d.]+$/m);
  t.regex(metrics, /^ferry_cluster_migrate_partitions_remaining 0$/m);
  t.regex(metrics, /^ferry_wire_proxied 0$/m);
  // --watch: a JSON line per report until the process is stopped.
  const watch = new FerryProcess('cluster --watch', ['cluster', '--node', `127.0.0.1:${nodes[0]!.port}`, '--watch', '100', '--json'], /^\{.*\}\n\{.*\}\n/m);
  await watch.start();
  await watch.stop();
  const reports = watch.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { view: { clusterKey: string } });
  t.true(reports.length >= 2);
  t.true(reports.every((x) => x.view.clusterKey === firstKey));
  const text = (await run([])).stdout;
  t.regex(text, new RegExp(`key ${firstKey}  size 3 .*all members agree`));
  for (const n of nodes) t.regex(text, new RegExp(`${n.id}\\s+127\\.0\\.0\\.1:${n.port}`));
});

test.serial("ferry's own client routes by the table too", async (t) => {
  const c = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: nodes[1]!.port }], tendIntervalMs: 0 });
  try {
    t.is(c.nodeIds().length, 3);
    for (let i = 0; i < 30; i++) await c.put({ namespace: ns, set: 'fc', key: `f${i}` }, { i });
    let n = 0;
    for await (const r of c.scan(ns, { set: 'fc' })) if (typeof r.bins['i'] === 'number') n++;
    t.is(n, 30);
    for (const m of nodes) t.is((await stats(m.port, 'ferry-wire')).get('proxied'), '0');
  } finally {
    c.close();
  }
});

test.serial('a command sent to a node that is not the master is proxied to the master', async (t) => {
  const key = 'k7';
  const digest = computeDigest(set, key);
  // The one node that holds no copy of the key: it must forward even a read.
  const other = nodes.find((n) => !holders(tableOf(nodes), key).includes(n.id))!;
  const before = Number((await stats(other.port, 'ferry-wire')).get('proxied'));
  const reply = decodeMsg(await rawCommand(other.port, encodeMsgFrame({ ...emptyHeader(), info1: Info1.READ | Info1.GET_ALL }, [field(FieldType.NAMESPACE, ns), field(FieldType.SET, set), field(FieldType.DIGEST, digest)])));
  t.is(reply.resultCode, ResultCode.OK);
  t.deepEqual(opsToBins(reply.ops).map((b) => [b.name, b.bytes.toString()]), [['k', key]]);
  t.is(Number((await stats(other.port, 'ferry-wire')).get('proxied')), before + 1);
  t.is((await stats(other.port, 'ferry-wire')).get('not_owner'), '0');
});

test.serial('a node with another cluster-name is refused, and both sides say so', async (t) => {
  const stranger = await startMember(nodes[0]!.hbPort, { FERRY_CLUSTER_NAME: 'elsewhere' });
  try {
    await waitFor(() => /refused us: cluster-name \\?"elsewhere/.test(stranger.proc.output), CONVERGE_TIMEOUT_MS, 'the stranger to log the refusal');
    t.regex(nodes[0]!.proc.output, /refusing node [0-9A-F]+ at 127\.0\.0\.1:\d+: cluster-name \\?"elsewhere/);
    t.is((await stats(stranger.port)).get('cluster_size'), '1');
    t.is(await converged(nodes), firstKey, 'the cluster did not change');
  } finally {
    await stranger.proc.stop();
  }
});

test.serial('a node killed -9: the others re-form with a new key, and every acknowledged write is still readable', async (t) => {
  const victim = nodes.pop()!;
  await victim.proc.stop('SIGKILL');
  const key = await converged(nodes);
  t.not(key, firstKey);
  t.is(key, tableOf(nodes).clusterKey);
  const counts = await Promise.all(nodes.map(async (n) => Number((await stats(n.port)).get('cluster_size'))));
  t.deepEqual(counts, [2, 2]);
  // Every partition has a master again: writes to keys of every partition the victim held succeed
  // once the client has re-read the map (it does so within a tend interval or two).
  const table = tableOf(nodes);
  await waitFor(() => client.getNodes().length === 2, CONVERGE_TIMEOUT_MS, 'the client to drop the dead node');
  // Written while all three were up, so each has a copy on a survivor, now its master.
  for (let i = 0; i < 150; i++) {
    const k = `k${i}`;
    let got: Any;
    await waitFor(
      async () => {
        got = await client.get(new Aerospike.Key(ns, set, k));
        return true;
      },
      CONVERGE_TIMEOUT_MS,
      `a read of ${k}`,
    );
    t.is(got.bins.k, k);
  }
  // Migrations re-created the second copy of every partition the victim held.
  await assertCopies(t, nodes, Array.from({ length: 150 }, (_, i) => `k${i}`));
  for (let i = 0; i < 60; i++) {
    const k = `after${i}`;
    await waitFor(
      async () => {
        await client.put(new Aerospike.Key(ns, set, k), { k });
        return true;
      },
      CONVERGE_TIMEOUT_MS,
      `a write of ${k}`,
    );
    const master = table.nodeAt(partitionOf(computeDigest(set, k)), 0);
    t.true(nodes.some((n) => n.id === master));
  }
});

test.serial('a client whose map went stale when a node joined is proxied, not failed', async (t) => {
  // This client never re-reads the map after connecting (tenderInterval of an hour).
  const stale: Any = await Aerospike.connect({ hosts: [{ addr: '127.0.0.1', port: nodes[0]!.port }], tenderInterval: 3_600_000, log: { level: Aerospike.log.OFF } });
  try {
    t.is(stale.getNodes().length, 2);
    const oldTable = tableOf(nodes);
    nodes.push(await startMember(nodes[0]!.hbPort));
    await converged(nodes);
    const table = tableOf(nodes);
    const newcomer = nodes[2]!;
    const keys = Array.from({ length: 90 }, (_, i) => `late${i}`);
    const proxiedBefore = await Promise.all(nodes.slice(0, 2).map(async (n) => Number((await stats(n.port, 'ferry-wire')).get('proxied'))));
    const heldBefore = await setObjects(newcomer.port);
    for (const k of keys) await stale.put(new Aerospike.Key(ns, set, k), { k });
    for (const k of keys) t.is((await stale.get(new Aerospike.Key(ns, set, k))).bins.k, k);
    // The stale client sends both to the old master: a write is forwarded unless that node is
    // still the master, a read unless it still holds a copy.
    let expectProxied = 0;
    for (const k of keys) {
      const oldMaster = holders(oldTable, k)[0]!;
      const now = holders(table, k);
      if (now[0] !== oldMaster) expectProxied++;
      if (!now.includes(oldMaster)) expectProxied++;
    }
    t.true(expectProxied > 0);
    const proxiedAfter = await Promise.all(nodes.slice(0, 2).map(async (n) => Number((await stats(n.port, 'ferry-wire')).get('proxied'))));
    t.is(proxiedAfter[0]! + proxiedAfter[1]! - proxiedBefore[0]! - proxiedBefore[1]!, expectProxied);
    const onNewcomer = keys.filter((k) => holders(table, k).includes(newcomer.id)).length;
    t.is((await setObjects(newcomer.port)) - heldBefore, onNewcomer, 'the newcomer holds exactly the new keys it masters or replicates');
    // Records written before it joined reached it by migration: every key has both copies.
    await assertCopies(t, nodes, [...Array.from({ length: 150 }, (_, i) => `k${i}`), ...Array.from({ length: 60 }, (_, i) => `after${i}`), ...keys]);
  } finally {
    await stale.close();
  }
});
