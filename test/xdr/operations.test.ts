/**
 * Operating features through their real interfaces, sharing one set of processes: two receivers
 * in one consumer group share the partitions and one of them is killed; the node's and the
 * receiver's /metrics; the fence survives restarts; high-water eviction takes the soonest-expiring
 * records first; device stop-writes refuses writes (official client) and keeps serving reads.
 */
import test from 'ava';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { FerryClient } from '../../store/client/client.js';
import { FerryProcess, freePort, getJson, waitFor } from '../helpers/procs.js';
import { runCli } from '../ops/helpers.js';
import type { ReceiverStats } from '../../receiver/receiver.js';

/* The official client is CommonJS with loose typings; it is driven through `any` on purpose. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');

interface Env {
  dir: string;
  ports: { broker: number; a: number; b: number; r1: number; r2: number; metricsA: number };
  broker: FerryProcess;
  a: FerryProcess;
  b: FerryProcess;
  r1: FerryProcess;
  r2: FerryProcess;
  ca: FerryClient;
}

let env: Env;

test.before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-ops-xdr-'));
  const ports = { broker: await freePort(), a: await freePort(), b: await freePort(), r1: await freePort(), r2: await freePort(), metricsA: await freePort() };
  const brokers = `127.0.0.1:${ports.broker}`;
  writeFileSync(join(dir, 'a.json'), JSON.stringify({
    namespaces: [
      { name: 'test', filesize: 32 * 1024 * 1024, 'write-block-size': 262144 },
      // Small, for eviction and stop-writes.
      { name: 'small', filesize: 4 * 1024 * 1024, 'write-block-size': 65536, 'high-water-disk-pct': 0, 'nsup-period': 1 },
    ],
    xdr: { site: 'A', destinations: [{ name: 'B', brokers: [brokers], namespaces: ['test'], 'kafka-partitions': 4, 'checkpoint-interval-ms': 200 }] },
  }));
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ namespaces: [{ name: 'test', filesize: 32 * 1024 * 1024, 'write-block-size': 262144, fenced: true }] }));
  for (const r of ['r1', 'r2'] as const) {
    writeFileSync(join(dir, `${r}.json`), JSON.stringify({ brokers: [brokers], topics: ['ferry.A.test'], destination: [`127.0.0.1:${ports.b}`], 'metrics-port': ports[r], 'group-id': 'shared' }));
  }
  const broker = new FerryProcess('broker', ['broker', '--data', join(dir, 'broker'), '--port', String(ports.broker)], /listening/);
  const a = new FerryProcess('node A', ['node', '--config', join(dir, 'a.json'), '--data', join(dir, 'a'), '--port', String(ports.a), '--metrics-port', String(ports.metricsA)], /ferry node listening/);
  const b = new FerryProcess('node B', ['node', '--config', join(dir, 'b.json'), '--data', join(dir, 'b'), '--port', String(ports.b)], /ferry node listening/);
  const r1 = new FerryProcess('receiver 1', ['receiver', '--config', join(dir, 'r1.json')], /ferry receiver ready/);
  const r2 = new FerryProcess('receiver 2', ['receiver', '--config', join(dir, 'r2.json')], /ferry receiver ready/);
  await broker.start();
  await Promise.all([a.start(), b.start()]);
  await Promise.all([r1.start(), r2.start()]);
  const ca = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.a }], tendIntervalMs: 0 });
  env = { dir, ports, broker, a, b, r1, r2, ca };
});

test.after.always(async () => {
  if (!env) return;
  env.ca.close();
  await Promise.all([env.r1.stop('SIGKILL'), env.r2.stop('SIGKILL'), env.a.stop('SIGKILL'), env.b.stop('SIGKILL'), env.broker.stop('SIGKILL')]);
  rmSync(env.dir, { recursive: true, force: true });
});

const stats = (port: number) => getJson<ReceiverStats>(`http://127.0.0.1:${port}/stats`);
async function metrics(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (-?[\d.e+]+)$/.exec(line);
    if (m) out.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return out;
}
async function nsStat(c: FerryClient, ns: string, name: string): Promise<number> {
  return Number(new RegExp(`(?:^|;)${name}=([^;]*)`).exec(await c.infoValue(`namespace/${ns}`))?.[1]);
}
async function putMany(c: FerryClient, ns: string, prefix: string, n: number, bins: (i: number) => Record<string, unknown>, ttl?: number): Promise<void> {
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => c.put({ namespace: ns, set: 'o', key: `${prefix}${i + j}` }, bins(i + j) as never, ttl === undefined ? {} : { ttl })));
  }
}

test.serial('two receivers in one group share the partitions; with one killed the other takes over; /metrics of node and receiver', async (t) => {
  const { ca, ports } = env;
  // Both members hold partitions before any record is produced.
  const kafka = new Kafka({ clientId: 'ops-xdr-test', brokers: [`127.0.0.1:${ports.broker}`], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  await waitFor(async () => {
    const g = (await admin.describeGroups(['shared'])).groups[0];
    return g?.state === 'Stable' && g.members.length === 2;
  }, 60_000, 'both receivers to join the group');
  await putMany(ca, 'test', 'g', 400, (i) => ({ i }));
  await waitFor(async () => (await stats(ports.r1)).applied + (await stats(ports.r2)).applied >= 400, 60_000, 'both receivers to apply 400 records');
  const [s1, s2] = [await stats(ports.r1), await stats(ports.r2)];
  t.true(s1.applied > 0 && s2.applied > 0, `both receivers applied records (${s1.applied}, ${s2.applied})`);

  // /metrics agree with /stats.
  const m1 = await metrics(ports.r1);
  t.is(m1.get('ferry_receiver_applied_total{group="shared"}'), (await stats(ports.r1)).applied);
  t.true(m1.has('ferry_receiver_consumer_lag{group="shared"}'));
  const ma = await metrics(ports.metricsA);
  t.true((ma.get('ferry_xdr_shipped_total{destination="B",namespace="test"}') ?? 0) >= 400, 'node /metrics: records shipped');
  t.true(ma.has('ferry_xdr_records_behind{destination="B",namespace="test"}'));
  t.true((ma.get('ferry_ns_objects{namespace="test"}') ?? 0) >= 400, 'node /metrics: namespace objects');

  // Receiver 2 dies; receiver 1 gets its partitions once the group notices, and B ends equal.
  await env.r2.stop('SIGKILL');
  const before = (await stats(ports.r1)).applied;
  await putMany(ca, 'test', 'h', 400, (i) => ({ i }));
  await waitFor(async () => (await stats(ports.r1)).applied - before >= 400, 90_000, 'receiver 1 to apply everything after receiver 2 died');
  const v = await runCli(['verify', '--a', `127.0.0.1:${ports.a}`, '--b', `127.0.0.1:${ports.b}`, '--namespace', 'test']);
  t.is(v.code, 0, v.stdout + v.stderr);
});

test.serial('a fence set at run time survives a clean restart and a kill -9; lifting it does too', async (t) => {
  const { ports } = env;
  const key = { namespace: 'small', set: 'o', key: 'fence' };
  const restart = async (signal: 'SIGTERM' | 'SIGKILL') => {
    env.ca.close();
    await env.a.stop(signal);
    await env.a.start();
    env.ca = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.a }], tendIntervalMs: 0 });
  };
  const writeCode = () => env.ca.put(key, { a: 1 }).then(() => 0, (e: { code?: number }) => e.code);
  t.is(await env.ca.infoValue('set-config:context=namespace;id=small;fenced=true'), 'ok');
  t.is(await writeCode(), 22, 'fenced: FORBIDDEN');
  await restart('SIGTERM');
  t.is(await writeCode(), 22, 'still fenced after a clean restart');
  await restart('SIGKILL');
  t.is(await writeCode(), 22, 'still fenced after kill -9');
  t.is(await env.ca.infoValue('set-config:context=namespace;id=small;fenced=false'), 'ok');
  await restart('SIGKILL');
  t.is(await writeCode(), 0, 'unfenced after the restart');
});

test.serial('high-water eviction removes the soonest-expiring records first and never those without TTL', async (t) => {
  const c = env.ca;
  const pad = 'x'.repeat(900);
  await putMany(c, 'small', 'never', 150, (i) => ({ i, pad }));
  await putMany(c, 'small', 'soon', 300, (i) => ({ i, pad }), 3600);
  await putMany(c, 'small', 'late', 300, (i) => ({ i, pad }), 360_000);
  const used = await nsStat(c, 'small', 'data_used_pct');
  t.true(used >= 4, `device use ${used}%`);
  t.is(await nsStat(c, 'small', 'evicted_objects'), 0);
  t.is(await c.infoValue(`set-config:context=namespace;id=small;high-water-disk-pct=${Math.max(1, used - 2)}`), 'ok');
  await waitFor(async () => (await nsStat(c, 'small', 'evicted_objects')) > 0, 30_000, 'eviction');
  t.is(await c.infoValue('set-config:context=namespace;id=small;high-water-disk-pct=0'), 'ok');
  const live = async (prefix: string, n: number) => {
    let k = 0;
    for (let i = 0; i < n; i++) if (await c.get({ namespace: 'small', set: 'o', key: `${prefix}${i}` })) k++;
    return k;
  };
  const [never, soon, late] = [await live('never', 150), await live('soon', 300), await live('late', 300)];
  t.is(never, 150, 'records without TTL are never evicted');
  t.true(soon < 300, 'soonest-expiring records were evicted');
  t.true(late === 300 || soon === 0, `a later-expiring record goes only after every sooner one (soon ${soon}, late ${late})`);
});

test.serial('device stop-writes: the official client gets OUT_OF_SPACE on writes and still reads', async (t) => {
  const c = env.ca;
  await c.put({ namespace: 'small', set: 'o', key: 'sw' }, { a: 1 });
  const client: Any = await Aerospike.connect({ hosts: [{ addr: '127.0.0.1', port: env.ports.a }], log: { level: Aerospike.log.OFF } });
  t.teardown(() => client.close());
  const key = new Aerospike.Key('small', 'o', 'sw');
  t.is(await c.infoValue('set-config:context=namespace;id=small;stop-writes-pct=1'), 'ok');
  await waitFor(async () => /stop_writes=true/.test(await c.infoValue('namespace/small')), 10_000, 'stop-writes');
  const code = await client.put(key, { a: 2 }).then(() => 0, (e: { code: number }) => e.code);
  t.is(code, 8, 'OUT_OF_SPACE (8)');
  t.is((await client.get(key)).bins.a, 1, 'reads are still served');
  t.is(await c.infoValue('set-config:context=namespace;id=small;stop-writes-pct=90'), 'ok');
  await waitFor(async () => /stop_writes=false/.test(await c.infoValue('namespace/small')), 10_000, 'writes allowed again');
  await client.put(key, { a: 3 });
  t.is((await client.get(key)).bins.a, 3);
});
