/**
 * `npm run bench -- wire [--seconds N] [--keys N] [--storage memory|device] [--commit-to-device] [--no-redis]`
 *
 * A ferry node in a child process, driven over loopback by the official `aerospike` client with
 * 50 commands in flight, 100-byte values, 80/20 and 50/50 read/write mixes, then the 80/20 mix
 * paced at half the measured peak (the latency goal). In the same run: Debian's redis-server
 * (appendonly yes, appendfsync everysec) driven by redis-benchmark -c 50 -d 100 -t get,set.
 * Prints figures next to the goals and ends with one JSON line {"bench":"wire", ...}.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../ops/free-port.js';
import { cpuSeconds, r2, r3, stopChild, summarise, waitForLine, type Phase } from './harness.js';
import { IN_FLIGHT, loadRecords } from './ferry-cluster.js';
import { BenchArgs } from './args.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VALUE_BYTES = 100;
const GOAL_RATIO_MIN = 1.0;
const GOAL_P99_MS_AT_HALF_LOAD = 1.0;

/**
 * Runs the mix for `seconds`. Closed loop: IN_FLIGHT workers, each starting its next command when
 * the last one finished. With `ratePerS`: open loop, a dispatcher starts commands on a schedule
 * (checked every timer tick, so they leave in small bursts), at most IN_FLIGHT outstanding.
 * Latency runs from the call into the client to its completion.
 */
async function runPhase(client: Any, Aerospike: Any, ns: string, keys: number, readPct: number, seconds: number, ratePerS?: number): Promise<Phase> {
  const value = Buffer.alloc(VALUE_BYTES, 0x61).toString('latin1');
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const one = async (): Promise<void> => {
    const key = new Aerospike.Key(ns, 'bench', Math.floor(Math.random() * keys));
    const t0 = performance.now();
    try {
      if (Math.random() * 100 < readPct) await client.get(key);
      else await client.put(key, { v: value });
    } catch {
      errors++;
    }
    latencies.push(performance.now() - t0);
  };
  if (ratePerS) {
    let inFlight = 0;
    let issued = 0;
    const pending = new Set<Promise<void>>();
    while (performance.now() < end) {
      const due = Math.floor(((performance.now() - start) * ratePerS) / 1000);
      while (issued < due && inFlight < IN_FLIGHT) {
        issued++;
        inFlight++;
        const p: Promise<void> = one().finally(() => {
          inFlight--;
          pending.delete(p);
        });
        pending.add(p);
      }
      await new Promise((r) => setTimeout(r, 0));
    }
    await Promise.all(pending);
  } else {
    const worker = async (): Promise<void> => {
      while (performance.now() < end) await one();
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  }
  return summarise(latencies, (performance.now() - start) / 1000, errors);
}

interface RedisResult {
  getOpsPerS: number;
  setOpsPerS: number;
  getP99Ms: number;
  setP99Ms: number;
  serverCpuPct: number | undefined;
  requests: number;
}

async function runRedis(requests: number, keys: number): Promise<RedisResult | { error: string }> {
  const server = spawnSync('sh', ['-c', 'command -v redis-server && command -v redis-benchmark'], { encoding: 'utf8' });
  if (server.status !== 0) return { error: 'redis-server/redis-benchmark not installed (FERRY_BENCH_DEPS=1 bash scripts/setup-test-deps.sh)' };
  const dir = mkdtempSync(path.join(tmpdir(), 'ferry-bench-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--daemonize', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await waitForLine(child, /Ready to accept connections/, 'redis-server');
    const cpu0 = cpuSeconds(child.pid);
    const started = performance.now();
    const r = spawnSync(
      'redis-benchmark',
      ['-h', '127.0.0.1', '-p', String(port), '-c', String(IN_FLIGHT), '-d', String(VALUE_BYTES), '-t', 'get,set', '-n', String(requests), '-r', String(keys), '--csv'],
      { encoding: 'utf8', timeout: 600_000 },
    );
    const cpu1 = cpuSeconds(child.pid);
    const serverCpuPct = cpu0 !== undefined && cpu1 !== undefined ? Math.round(((cpu1 - cpu0) / ((performance.now() - started) / 1000)) * 100) : undefined;
    if (r.status !== 0) return { error: `redis-benchmark failed: ${r.stderr}` };
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    const rows = new Map<string, string[]>();
    for (const line of r.stdout.trim().split('\n')) {
      const cells = line.split(',').map((c) => c.replace(/"/g, ''));
      rows.set(cells[0]!, cells);
    }
    const get = rows.get('GET');
    const set = rows.get('SET');
    if (!get || !set) return { error: `unexpected redis-benchmark output: ${r.stdout}` };
    return { getOpsPerS: Number(get[1]), setOpsPerS: Number(set[1]), getP99Ms: Number(get[6]), setP99Ms: Number(set[6]), serverCpuPct, requests };
  } finally {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Throughput of a read/write mix from per-command rates (time-weighted). */
const mixRate = (readPct: number, readRate: number, writeRate: number): number => 1 / (readPct / 100 / readRate + (1 - readPct / 100) / writeRate);

export async function main(args: string[]): Promise<void> {
  const opts = new BenchArgs(args);
  const seconds = opts.num('seconds', 10);
  const keys = opts.num('keys', 10_000);
  const withRedis = !opts.has('no-redis');
  const extraNodeArgs = opts.has('commit-to-device') ? ['--commit-to-device'] : [];
  const storageArg = opts.value('storage');
  if (storageArg) extraNodeArgs.push('--storage', storageArg);

  const Aerospike: Any = createRequire(import.meta.url)('aerospike');
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ferry-bench-wire-'));
  const port = await freePort();
  const nodeProc = spawn(process.execPath, ['bin/ferry.mjs', 'node', '--port', String(port), '--data', dataDir, ...extraNodeArgs], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let client: Any;
  const out: Record<string, unknown> = { bench: 'wire' };
  try {
    await waitForLine(nodeProc, /ferry node listening on/, 'ferry node');
    client = await Aerospike.connect({
      hosts: [{ addr: '127.0.0.1', port }],
      log: { level: Aerospike.log.OFF },
      maxConnsPerNode: IN_FLIGHT * 2,
      policies: { read: { totalTimeout: 5000 }, write: { totalTimeout: 5000 } },
    });
    const nsInfo = String(await client.infoAny('namespaces'));
    const namespaces = nsInfo.slice(nsInfo.indexOf('\t') + 1).trim().split(';');
    const ns = namespaces.includes('test') ? 'test' : namespaces[0]!;
    const storage = storageArg ?? 'device (default)';

    console.log(`wire bench: node pid ${nodeProc.pid} on 127.0.0.1:${port}, namespace ${ns} (${storage}${extraNodeArgs.length ? ', commit-to-device' : ''}), ${IN_FLIGHT} in flight, ${VALUE_BYTES}-byte values, ${keys} keys, ${seconds} s per phase`);
    // Load every key once, then warm up.
    await loadRecords(client, Aerospike, ns, 'bench', keys, VALUE_BYTES);
    await runPhase(client, Aerospike, ns, keys, 80, Math.max(2, seconds / 3));
    const nodeCpu0 = cpuSeconds(nodeProc.pid);
    const benchCpu0 = process.cpuUsage();
    const mix80 = await runPhase(client, Aerospike, ns, keys, 80, seconds);
    const nodeCpu1 = cpuSeconds(nodeProc.pid);
    const benchCpu = process.cpuUsage(benchCpu0);
    if (nodeCpu0 !== undefined && nodeCpu1 !== undefined) {
      out['node_cpu_pct'] = Math.round(((nodeCpu1 - nodeCpu0) / mix80.seconds) * 100);
      out['node_cpu_us_per_op'] = Math.round(((nodeCpu1 - nodeCpu0) * 1e6) / mix80.ops);
    }
    out['client_cpu_pct'] = Math.round(((benchCpu.user + benchCpu.system) / 1e6 / mix80.seconds) * 100);
    const mix50 = await runPhase(client, Aerospike, ns, keys, 50, seconds);
    const half = await runPhase(client, Aerospike, ns, keys, 80, seconds, mix80.opsPerS / 2);
    const show = (name: string, p: Phase): void =>
      console.log(
        `  ${name.padEnd(22)} ${Math.round(p.opsPerS).toString().padStart(8)} ops/s   p50 ${r3(p.p50Ms)} ms   p99 ${r3(p.p99Ms)} ms   p999 ${r3(p.p999Ms)} ms   errors ${p.errors}`,
      );
    show('ferry 80/20 read/write', mix80);
    show('ferry 50/50 read/write', mix50);
    show('ferry 80/20 @ half peak', half);
    console.log(`  80/20 CPU: ferry node ${out['node_cpu_pct'] ?? '?'}% (${out['node_cpu_us_per_op'] ?? '?'} us/op), official client process ${out['client_cpu_pct']}% (of one core; ${cpus().length} cores)`);
    Object.assign(out, {
      storage,
      in_flight: IN_FLIGHT,
      value_bytes: VALUE_BYTES,
      ops_per_s: Math.round(mix80.opsPerS),
      p50_ms: r3(mix80.p50Ms),
      p99_ms: r3(mix80.p99Ms),
      p999_ms: r3(mix80.p999Ms),
      errors: mix80.errors + mix50.errors + half.errors,
      ops_per_s_50_50: Math.round(mix50.opsPerS),
      p50_ms_50_50: r3(mix50.p50Ms),
      p99_ms_50_50: r3(mix50.p99Ms),
      p999_ms_50_50: r3(mix50.p999Ms),
      half_load_ops_per_s: Math.round(half.opsPerS),
      half_load_p99_ms: r3(half.p99Ms),
    });
    await client.close();
    client = undefined;
  } finally {
    if (client) await client.close();
    await stopChild(nodeProc);
    rmSync(dataDir, { recursive: true, force: true });
  }

  if (withRedis) {
    const requests = Math.max(100_000, Math.round((out['ops_per_s'] as number) * seconds));
    const redis = await runRedis(requests, keys);
    if ('error' in redis) {
      console.log(`  redis: ${redis.error}`);
      out['redis_error'] = redis.error;
    } else {
      const redis80 = mixRate(80, redis.getOpsPerS, redis.setOpsPerS);
      const redis50 = mixRate(50, redis.getOpsPerS, redis.setOpsPerS);
      console.log(`  redis GET ${Math.round(redis.getOpsPerS)} ops/s (p99 ${redis.getP99Ms} ms), SET ${Math.round(redis.setOpsPerS)} ops/s (p99 ${redis.setP99Ms} ms)`);
      console.log(`  redis 80/20 (from GET/SET rates) ${Math.round(redis80)} ops/s, 50/50 ${Math.round(redis50)} ops/s; redis-server CPU ${redis.serverCpuPct ?? '?'}% (${redis.requests} requests per test)`);
      if (redis.serverCpuPct !== undefined) out['redis_cpu_pct'] = redis.serverCpuPct;
      Object.assign(out, {
        redis_ops_per_s: Math.round(redis80),
        redis_ops_per_s_50_50: Math.round(redis50),
        redis_get_ops_per_s: Math.round(redis.getOpsPerS),
        redis_set_ops_per_s: Math.round(redis.setOpsPerS),
        redis_p99_ms: Math.max(redis.getP99Ms, redis.setP99Ms),
        ratio_vs_redis: r2((out['ops_per_s'] as number) / redis80),
        ratio_vs_redis_50_50: r2((out['ops_per_s_50_50'] as number) / redis50),
      });
    }
  }
  const ratio = out['ratio_vs_redis'] as number | undefined;
  console.log(`  goal: ratio_vs_redis >= ${GOAL_RATIO_MIN}: ${ratio === undefined ? 'not measured' : `${ratio} ${ratio >= GOAL_RATIO_MIN ? 'MET' : 'NOT MET'}`}`);
  const hp = out['half_load_p99_ms'] as number | undefined;
  console.log(`  goal: p99 <= ${GOAL_P99_MS_AT_HALF_LOAD} ms at half of peak: ${hp === undefined ? 'not measured' : `${hp} ms ${hp <= GOAL_P99_MS_AT_HALF_LOAD ? 'MET' : 'NOT MET'}`}`);
  console.log(JSON.stringify(out));
}
