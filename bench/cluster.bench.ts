/**
 * `npm run bench -- cluster [--seconds N] [--keys N] [--no-redis]`
 *
 * A site as a cluster, measured with the official `aerospike` client (50 commands in flight,
 * 100-byte values) in one run:
 * - one `ferry node` (replication factor 1, no heartbeat) against three `ferry node`s joined by
 *   heartbeats (replication factor 2, the default): writes only, then an 80/20 read/write mix;
 *   `rf2_vs_rf1_ops_ratio` is the write ratio (replication costs writes; reads are one hop).
 * - `failover_unavailable_ms`: a key mastered by one node is written in a loop; that node is
 *   killed with SIGKILL; the time until the first successful write of the key afterwards.
 * - `migration_records_per_s`: the killed node is started again on its data; records sent by
 *   migrations over the time until every node reports none remaining.
 * The peer a user would otherwise pick: a Redis Cluster of 3 masters with one replica each
 * (Debian's redis-server, cluster-enabled, appendonly with appendfsync everysec) driven by
 * `redis-benchmark --cluster` at the same value size and concurrency, and its failover time
 * (SIGKILL of a master to the first successful SET of one of its keys) at the default
 * cluster-node-timeout (15000 ms) and at 2000 ms. Ends with one JSON line {"bench":"cluster", ...}.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../ops/free-port.js';
import { computeDigest, partitionOf } from '../store/index.js';
import { closedLoop, cpuSeconds, r2, r3, spawnPiped, stopChild, waitForLine, type Phase } from './harness.js';
import { IN_FLIGHT, SETTLE_TIMEOUT_MS, connect, loadRecords, info, newFerryNode, settled, startFerry, stats, waitUntil, type FerryNodeProc } from './ferry-cluster.js';
import { BenchArgs } from './args.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const VALUE_BYTES = 100;
const NODES = 3;
const NS_SET = 'bench';
/** Bound on one failover measurement (Redis at its default node timeout takes ~15-20 s). */
const FAILOVER_TIMEOUT_MS = 60_000;
/** Per attempt of the failover write loop (the writer retries at once after a failure). */
const FAILOVER_ATTEMPT_TIMEOUT_MS = 250;
const REDIS_DEFAULT_NODE_TIMEOUT_MS = 15_000;
const REDIS_FAST_NODE_TIMEOUT_MS = 2_000;
const GOAL_RF2_VS_RF1_MIN = 0.7;
const GOAL_FAILOVER_MS_MAX = 2000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- ferry

/** Partitions the node at `port` masters in namespace ns (from its `replicas-master` bitmap). */
async function masteredBy(port: number, ns: string): Promise<(pid: number) => boolean> {
  const line = (await info(port, 'replicas-master')).split(';').find((e) => e.startsWith(`${ns}:`));
  if (!line) throw new Error(`node ${port} has no replicas-master entry for ${ns}`);
  const bits = Buffer.from(line.slice(ns.length + 1), 'base64');
  return (pid) => (bits[pid >> 3]! & (0x80 >> (pid & 7))) !== 0;
}


interface Phases {
  writes: Phase;
  mix: Phase;
  /** CPU time of every node process per command (load on the machine does not change it much). */
  writeCpuUsPerOp: number | undefined;
  mixCpuUsPerOp: number | undefined;
}

/** Sum of the CPU seconds of the given processes, undefined where /proc is absent. */
function cpuOf(pids: Array<number | undefined>): number | undefined {
  let sum = 0;
  for (const pid of pids) {
    const s = cpuSeconds(pid);
    if (s === undefined) return undefined;
    sum += s;
  }
  return sum;
}

async function phases(client: Any, Aerospike: Any, ns: string, keys: number, seconds: number, pids: Array<number | undefined>): Promise<Phases> {
  const value = Buffer.alloc(VALUE_BYTES, 0x62).toString('latin1');
  const key = (): Any => new Aerospike.Key(ns, NS_SET, Math.floor(Math.random() * keys));
  await closedLoop(Math.max(2, seconds / 4), IN_FLIGHT, () => client.put(key(), { v: value })); // warm-up
  const perOp = (c0: number | undefined, c1: number | undefined, p: Phase): number | undefined => (c0 === undefined || c1 === undefined ? undefined : Math.round(((c1 - c0) * 1e6) / p.ops));
  const w0 = cpuOf(pids);
  const writes = await closedLoop(seconds, IN_FLIGHT, () => client.put(key(), { v: value }));
  const w1 = cpuOf(pids);
  const mix = await closedLoop(seconds, IN_FLIGHT, () => (Math.random() < 0.8 ? client.get(key()) : client.put(key(), { v: value })));
  const m1 = cpuOf(pids);
  return { writes, mix, writeCpuUsPerOp: perOp(w0, w1, writes), mixCpuUsPerOp: perOp(w1, m1, mix) };
}

/** Kill -9 of the master of one key, to the first successful write of that key. */
async function ferryFailover(client: Any, Aerospike: Any, ns: string, nodes: FerryNodeProc[]): Promise<{ victim: FerryNodeProc; unavailableMs: number; failedAttempts: number }> {
  const victim = nodes[1]!;
  const owns = await masteredBy(victim.port, ns);
  let k = 0;
  while (!owns(partitionOf(computeDigest(NS_SET, `failover-${k}`)))) k++;
  const key = new Aerospike.Key(ns, NS_SET, `failover-${k}`);
  const policy = { totalTimeout: FAILOVER_ATTEMPT_TIMEOUT_MS, socketTimeout: FAILOVER_ATTEMPT_TIMEOUT_MS };
  await client.put(key, { v: 'before' }, undefined, policy);
  const killedAt = performance.now();
  victim.child.kill('SIGKILL');
  let failedAttempts = 0;
  for (;;) {
    try {
      await client.put(key, { v: 'after' }, undefined, policy);
      return { victim, unavailableMs: Math.round(performance.now() - killedAt), failedAttempts };
    } catch {
      failedAttempts++;
      if (performance.now() - killedAt > FAILOVER_TIMEOUT_MS) throw new Error(`no successful write of ${key.key} within ${FAILOVER_TIMEOUT_MS} ms of the kill`);
    }
  }
}

// ---------------------------------------------------------------- Redis Cluster

interface RedisNode {
  port: number;
  dir: string;
  child: ChildProcess;
}

async function startRedisCluster(nodeTimeoutMs: number): Promise<RedisNode[]> {
  const nodes: RedisNode[] = [];
  try {
    for (let i = 0; i < NODES * 2; i++) {
      const port = await freePort();
      const busPort = await freePort();
      const dir = mkdtempSync(path.join(tmpdir(), 'ferry-bench-redis-cluster-'));
      const child = spawnPiped('redis-server', [
        '--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--dir', dir,
        '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(nodeTimeoutMs),
        '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--daemonize', 'no',
      ]);
      nodes.push({ port, dir, child });
      await waitForLine(child, /Ready to accept connections/, `redis-server ${port}`);
    }
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: SETTLE_TIMEOUT_MS });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}\n${create.stderr}`);
    await waitUntil(async () => nodes.every((n) => /cluster_state:ok/.test(redisCli(n.port, ['cluster', 'info']))), SETTLE_TIMEOUT_MS, 'the Redis cluster to report cluster_state:ok');
    // A replica that has not synced with its master yet cannot be promoted: wait for every link.
    await waitUntil(
      async () => {
        const roles = nodes.map((n) => redisCli(n.port, ['info', 'replication']));
        const replicas = roles.filter((r) => /role:slave/.test(r));
        return replicas.length === NODES && replicas.every((r) => /master_link_status:up/.test(r) && !/master_sync_in_progress:1/.test(r));
      },
      SETTLE_TIMEOUT_MS,
      'every Redis replica to finish its first sync',
    );
    return nodes;
  } catch (err) {
    await stopRedisCluster(nodes);
    throw err;
  }
}

async function stopRedisCluster(nodes: RedisNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => stopChild(n.child)));
  for (const n of nodes) rmSync(n.dir, { recursive: true, force: true });
}

function redisCli(port: number, args: string[]): string {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
  return r.stdout ?? '';
}

/** One RESP command on a fresh connection; resolves with the first reply line ('+OK', '-MOVED ...'). */
function respOnce(port: number, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    let got = '';
    s.on('connect', () => s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      const end = got.indexOf('\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        s.destroy();
        resolve(got.slice(0, end));
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** A SET that follows MOVED redirects once, as a cluster client does. */
async function redisSet(ports: number[], key: string, value: string): Promise<boolean> {
  for (const port of ports) {
    try {
      let reply = await respOnce(port, ['SET', key, value], FAILOVER_ATTEMPT_TIMEOUT_MS);
      const moved = /^-MOVED \d+ [^:]+:(\d+)/.exec(reply);
      if (moved) reply = await respOnce(Number(moved[1]), ['SET', key, value], FAILOVER_ATTEMPT_TIMEOUT_MS);
      if (reply === '+OK') return true;
    } catch {
      // that node is down or timed out: try the next
    }
  }
  return false;
}

async function redisFailover(nodeTimeoutMs: number): Promise<number> {
  const nodes = await startRedisCluster(nodeTimeoutMs);
  try {
    const key = 'ferry-failover-key';
    const slot = Number(redisCli(nodes[0]!.port, ['cluster', 'keyslot', key]).trim());
    // "<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <state> <slots...>"
    const owner = redisCli(nodes[0]!.port, ['cluster', 'nodes'])
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .find((f) => f[2]!.includes('master') && f.slice(8).some((r) => {
        const [lo, hi] = r.split('-').map(Number);
        return slot >= lo! && slot <= (hi ?? lo)!;
      }));
    if (!owner) throw new Error(`no Redis master owns slot ${slot}`);
    const masterPort = Number(/:(\d+)@/.exec(owner[1]!)![1]);
    const victim = nodes.find((n) => n.port === masterPort)!;
    const others = nodes.filter((n) => n !== victim).map((n) => n.port);
    if (!(await redisSet([masterPort], key, 'before'))) throw new Error('the first Redis SET failed');
    const killedAt = performance.now();
    victim.child.kill('SIGKILL');
    for (;;) {
      if (await redisSet(others, key, 'after')) return Math.round(performance.now() - killedAt);
      if (performance.now() - killedAt > FAILOVER_TIMEOUT_MS) throw new Error(`no successful Redis SET within ${FAILOVER_TIMEOUT_MS} ms of the kill`);
      await sleep(10);
    }
  } finally {
    await stopRedisCluster(nodes);
  }
}

interface RedisThroughput {
  setOpsPerS: number;
  getOpsPerS: number;
  setP99Ms: number;
  getP99Ms: number;
}

async function redisThroughput(requests: number, keys: number): Promise<RedisThroughput> {
  const nodes = await startRedisCluster(REDIS_DEFAULT_NODE_TIMEOUT_MS);
  try {
    const r = spawnSync(
      'redis-benchmark',
      ['--cluster', '-h', '127.0.0.1', '-p', String(nodes[0]!.port), '-c', String(IN_FLIGHT), '-d', String(VALUE_BYTES), '-t', 'set,get', '-n', String(requests), '-r', String(keys), '--csv'],
      { encoding: 'utf8', timeout: 600_000 },
    );
    if (r.status !== 0) throw new Error(`redis-benchmark --cluster failed: ${r.stderr}`);
    const rows = new Map<string, string[]>();
    for (const line of r.stdout.trim().split('\n')) {
      const cells = line.split(',').map((c) => c.replace(/"/g, ''));
      rows.set(cells[0]!, cells);
    }
    const set = rows.get('SET');
    const get = rows.get('GET');
    if (!set || !get) throw new Error(`unexpected redis-benchmark output: ${r.stdout}`);
    return { setOpsPerS: Number(set[1]), getOpsPerS: Number(get[1]), setP99Ms: Number(set[6]), getP99Ms: Number(get[6]) };
  } finally {
    await stopRedisCluster(nodes);
  }
}

// ---------------------------------------------------------------- main

export async function main(args: string[]): Promise<void> {
  const opts = new BenchArgs(args);
  const seconds = opts.num('seconds', 10);
  const keys = opts.num('keys', 100_000);
  const withRedis = !opts.has('no-redis');
  const Aerospike: Any = createRequire(import.meta.url)('aerospike');
  const ns = 'test';
  const out: Record<string, unknown> = { bench: 'cluster', in_flight: IN_FLIGHT, value_bytes: VALUE_BYTES, keys };
  const show = (name: string, p: Phase): void =>
    console.log(`  ${name.padEnd(30)} ${Math.round(p.opsPerS).toString().padStart(8)} ops/s   p50 ${r3(p.p50Ms)} ms   p99 ${r3(p.p99Ms)} ms   errors ${p.errors}`);
  console.log(`cluster bench: official client, ${IN_FLIGHT} in flight, ${VALUE_BYTES}-byte values, ${keys} keys, ${seconds} s per phase`);

  // One node, replication factor 1.
  const single = await newFerryNode(undefined, false);
  let rf1: Phases;
  try {
    const client = await connect(Aerospike, single.port);
    try {
      await loadRecords(client, Aerospike, ns, NS_SET, keys, VALUE_BYTES);
      rf1 = await phases(client, Aerospike, ns, keys, seconds, [single.child.pid]);
    } finally {
      await client.close();
    }
  } finally {
    await stopChild(single.child);
    rmSync(single.dataDir, { recursive: true, force: true });
  }
  show('1 node, rf 1, writes', rf1.writes);
  show('1 node, rf 1, 80/20 read/write', rf1.mix);
  console.log(`  node CPU per command, rf 1: writes ${rf1.writeCpuUsPerOp ?? '?'} us, 80/20 ${rf1.mixCpuUsPerOp ?? '?'} us`);

  // Three nodes, replication factor 2.
  const nodes: FerryNodeProc[] = [];
  try {
    nodes.push(await newFerryNode());
    for (let i = 1; i < NODES; i++) nodes.push(await newFerryNode(nodes[0]!.hbPort));
    await settled(nodes, NODES);
    const client = await connect(Aerospike, nodes[0]!.port);
    try {
      await waitUntil(async () => (client.getNodes() as unknown[]).length === NODES, SETTLE_TIMEOUT_MS, 'the client to see every node');
      await loadRecords(client, Aerospike, ns, NS_SET, keys, VALUE_BYTES);
      const rf2 = await phases(client, Aerospike, ns, keys, seconds, nodes.map((n) => n.child.pid));
      show(`${NODES} nodes, rf 2, writes`, rf2.writes);
      show(`${NODES} nodes, rf 2, 80/20 read/write`, rf2.mix);
      console.log(`  node CPU per command (all ${NODES} nodes), rf 2: writes ${rf2.writeCpuUsPerOp ?? '?'} us, 80/20 ${rf2.mixCpuUsPerOp ?? '?'} us`);
      const proxied = (await Promise.all(nodes.map((n) => stats(n.port)))).reduce((s, x) => s + Number(x.get('proxied') ?? 0), 0);
      Object.assign(out, {
        rf1_write_ops_per_s: Math.round(rf1.writes.opsPerS),
        rf1_write_p99_ms: r3(rf1.writes.p99Ms),
        rf2_write_ops_per_s: Math.round(rf2.writes.opsPerS),
        rf2_write_p99_ms: r3(rf2.writes.p99Ms),
        rf2_vs_rf1_ops_ratio: r2(rf2.writes.opsPerS / rf1.writes.opsPerS),
        rf1_mix_ops_per_s: Math.round(rf1.mix.opsPerS),
        rf1_mix_p99_ms: r3(rf1.mix.p99Ms),
        rf2_mix_ops_per_s: Math.round(rf2.mix.opsPerS),
        rf2_mix_p99_ms: r3(rf2.mix.p99Ms),
        rf2_vs_rf1_mix_ratio: r2(rf2.mix.opsPerS / rf1.mix.opsPerS),
        rf1_write_node_cpu_us_per_op: rf1.writeCpuUsPerOp,
        rf2_write_node_cpu_us_per_op: rf2.writeCpuUsPerOp,
        rf1_mix_node_cpu_us_per_op: rf1.mixCpuUsPerOp,
        rf2_mix_node_cpu_us_per_op: rf2.mixCpuUsPerOp,
        errors: rf1.writes.errors + rf1.mix.errors + rf2.writes.errors + rf2.mix.errors,
        proxied_commands: proxied,
      });

      const fo = await ferryFailover(client, Aerospike, ns, nodes);
      out['failover_unavailable_ms'] = fo.unavailableMs;
      console.log(`  failover: SIGKILL of the master of a key to its first successful write: ${fo.unavailableMs} ms (${fo.failedAttempts} failed attempts of ${FAILOVER_ATTEMPT_TIMEOUT_MS} ms at most)`);
      const alive = nodes.filter((n) => n !== fo.victim);
      await settled(alive, NODES - 1);
      const sentBefore = (await Promise.all(alive.map((n) => stats(n.port)))).reduce((s, x) => s + Number(x.get('migrate_records_sent') ?? 0), 0);

      // The node returns on its data: migrations refill it.
      const t0 = performance.now();
      const back = await startFerry(fo.victim.args, fo.victim.port, fo.victim.dataDir, fo.victim.hbPort);
      nodes[nodes.indexOf(fo.victim)] = back;
      await settled(nodes, NODES);
      const elapsedS = (performance.now() - t0) / 1000;
      const sentAfter = (await Promise.all(nodes.map((n) => stats(n.port)))).reduce((s, x) => s + Number(x.get('migrate_records_sent') ?? 0), 0);
      const sentByReturned = Number((await stats(back.port)).get('migrate_records_sent') ?? 0);
      const migrated = sentAfter - sentBefore;
      out['migration_records'] = migrated;
      out['migration_s'] = r2(elapsedS);
      out['migration_records_per_s'] = Math.round(migrated / elapsedS);
      console.log(`  rejoin: ${migrated} records migrated (${sentByReturned} of them by the returning node) in ${r2(elapsedS)} s from its start to a settled cluster: ${out['migration_records_per_s']} records/s`);
    } finally {
      await client.close();
    }
  } finally {
    await Promise.all(nodes.map((n) => stopChild(n.child)));
    for (const n of nodes) rmSync(n.dataDir, { recursive: true, force: true });
  }

  if (withRedis) {
    const have = spawnSync('sh', ['-c', 'command -v redis-server && command -v redis-benchmark && command -v redis-cli'], { encoding: 'utf8' });
    if (have.status !== 0) {
      out['redis_error'] = 'redis-server/redis-benchmark/redis-cli not installed (FERRY_BENCH_DEPS=1 bash scripts/setup-test-deps.sh)';
      console.log(`  redis: ${String(out['redis_error'])}`);
    } else {
      const requests = Math.max(200_000, Math.round((out['rf2_write_ops_per_s'] as number) * seconds));
      const t = await redisThroughput(requests, keys);
      console.log(`  Redis Cluster (${NODES} masters + ${NODES} replicas, appendfsync everysec): SET ${Math.round(t.setOpsPerS)} ops/s (p99 ${t.setP99Ms} ms), GET ${Math.round(t.getOpsPerS)} ops/s (p99 ${t.getP99Ms} ms)`);
      const foDefault = await redisFailover(REDIS_DEFAULT_NODE_TIMEOUT_MS);
      const foFast = await redisFailover(REDIS_FAST_NODE_TIMEOUT_MS);
      console.log(`  Redis Cluster failover (SIGKILL of a master to the first SET of its key): ${foDefault} ms at cluster-node-timeout ${REDIS_DEFAULT_NODE_TIMEOUT_MS}, ${foFast} ms at ${REDIS_FAST_NODE_TIMEOUT_MS}`);
      Object.assign(out, {
        redis_set_ops_per_s: Math.round(t.setOpsPerS),
        redis_set_p99_ms: t.setP99Ms,
        redis_get_ops_per_s: Math.round(t.getOpsPerS),
        redis_get_p99_ms: t.getP99Ms,
        rf2_write_vs_redis_set: r2((out['rf2_write_ops_per_s'] as number) / t.setOpsPerS),
        redis_failover_ms_default_timeout: foDefault,
        redis_failover_ms_2000_timeout: foFast,
      });
    }
  }
  const ratio = out['rf2_vs_rf1_ops_ratio'] as number;
  const fo = out['failover_unavailable_ms'] as number;
  console.log(`  goal: rf2_vs_rf1_ops_ratio >= ${GOAL_RF2_VS_RF1_MIN}: ${ratio} ${ratio >= GOAL_RF2_VS_RF1_MIN ? 'MET' : 'NOT MET'}`);
  console.log(`  goal: failover_unavailable_ms <= ${GOAL_FAILOVER_MS_MAX}: ${fo} ${fo <= GOAL_FAILOVER_MS_MAX ? 'MET' : 'NOT MET'}`);
  console.log(JSON.stringify(out));
}
