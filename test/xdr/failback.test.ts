/**
 * The disaster-recovery cycle between two clusters, as an operator runs it (real processes, the
 * CLI as typed): site A (3 nodes, commit-to-device) ships to B (2 nodes, fenced), B ships to A;
 * one receiver per direction, one embedded broker.
 *
 * Writes on A are shipped; then A's shipping is cut off on purpose (the broker stops), A
 * acknowledges more writes, and every node of A is killed -9. `ferry failover` promotes B and
 * prints RPO/RTO; B takes writes; A comes back; `ferry failback` fences A, drains B -> A, lists
 * the writes A acknowledged but never shipped (exactly the cut-off ones, with set and key),
 * writes A's versions of them to a topic for the operator and keeps B's (policy `topic`, which
 * resolves like the default keep-b), switches over and verifies EQUAL. Then A -> B
 * resumes, and a second `ferry failback` finds nothing left to do.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FerryProcess, ROOT, getJson, waitFor } from '../helpers/procs.js';
import { embeddedBroker } from '../helpers/kafka.js';
import { Kafka, logLevel } from 'kafkajs';
import { computeDigest } from '../../store/digest.js';
import { decodeVersion } from '../../store/index.js';
import type { ReceiverStats } from '../../receiver/receiver.js';
import type { FailoverReport } from '../../ops/failover.js';
import type { FailbackReport } from '../../ops/failback.js';
import { info, restartSite, siteShipped, startReceiver, startSite, xdrStreams, type SiteNode } from './cluster-sites.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');
/** Longest gap between two assertions of these multi-process tests (ava's own default is 120 s). */
const LONG_TEST_TIMEOUT_MS = 300_000;
const execFileP = promisify(execFile);
const SET = 'dr';
const SHIPPED_KEYS = 200;
const CUT_KEYS = 20;
const B_KEYS = 30;
/** Keys A shipped that B overwrites while it is active. */
const B_OVERWRITES = 10;

const ferry = (args: string[]): Promise<{ stdout: string; stderr: string; code?: number }> =>
  execFileP(process.execPath, ['bin/ferry.mjs', ...args], { cwd: ROOT, timeout: 120_000 }).catch((err: Any) => err as { stdout: string; stderr: string; code: number });

async function applied(url: string, since: number): Promise<boolean> {
  const r = await getJson<ReceiverStats>(`${url}/stats`);
  return r.consumerLag === 0 && r.lagMeasuredAtMs > since;
}

/** Waits until `site` shipped everything and the receiver applied it. */
async function converged(site: SiteNode[], receiverUrl: string): Promise<void> {
  await siteShipped(site, 60_000);
  const at = Date.now();
  await waitFor(() => applied(receiverUrl, at), 60_000, `${receiverUrl} to apply everything`);
}

test.serial('failover -> writes on B -> failback lists exactly the cut-off writes -> switchover -> EQUAL', async (t) => {
  // Every wait inside is bounded; on a loaded machine the gaps between assertions are long.
  t.timeout(LONG_TEST_TIMEOUT_MS);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-dr-'));
  const t0 = Date.now();
  const phase = (name: string) => t.log(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${name}`);
  const procs: FerryProcess[] = [];
  const clients: Any[] = [];
  t.teardown(async () => {
    if (!t.passed) for (const p of procs) if (p.output) t.log(`--- ${p.name}\n${p.output.slice(-1500)}`);
    for (const c of clients) c.close();
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  });
  const broker = await embeddedBroker(dir);
  procs.push({ stop: () => broker.close() } as unknown as FerryProcess);
  const dest = (name: string, topic: string) => ({ name, brokers: broker.brokers, namespaces: ['test'], topic, 'kafka-partitions': 4, 'checkpoint-interval-ms': 200, 'retry-backoff-max-ms': 500 });
  const [a, b] = await Promise.all([
    startSite({
      name: 'a', size: 3, dir, procs,
      namespace: { 'storage-engine': 'device', filesize: 32 * 1024 * 1024, 'write-block-size': 262144, 'commit-to-device': true },
      xdr: { site: 'A', destinations: [dest('B', 'ferry.A.test')] },
    }),
    startSite({ name: 'b', size: 2, dir, procs, namespace: { fenced: true }, xdr: { site: 'B', destinations: [dest('A', 'ferry.B.test')] } }),
  ]);
  for (const n of [a[0]!, b[0]!]) await waitFor(async () => (await xdrStreams(n.port))[0]?.connected === true, 30_000, 'the shippers to create their topics');
  let ab = await startReceiver({ dir, name: 'ab', brokers: broker.brokers, topic: 'ferry.A.test', destination: b, procs });
  const ba = await startReceiver({ dir, name: 'ba', brokers: broker.brokers, topic: 'ferry.B.test', destination: a, procs });
  const connect = async (site: SiteNode[]) => {
    const c = await Aerospike.connect({ hosts: site.map((n) => ({ addr: '127.0.0.1', port: n.port })), log: { level: Aerospike.log.OFF }, policies: { write: new Aerospike.WritePolicy({ key: Aerospike.policy.key.SEND, totalTimeout: 5000, maxRetries: 3 }) } });
    clients.push(c);
    return c;
  };
  phase('sites up');
  const clientA = await connect(a);
  for (let i = 0; i < SHIPPED_KEYS; i++) await clientA.put(new Aerospike.Key('test', SET, `k${i}`), { v: i, from: 'A' });
  await converged(a, ab.url);

  phase('shipped');
  // Cut A's shipping off, acknowledge writes, lose the whole site.
  await broker.stop('SIGKILL');
  for (let i = 0; i < CUT_KEYS; i++) await clientA.put(new Aerospike.Key('test', SET, `cut${i}`), { v: i, from: 'A, never shipped' });
  clientA.close();
  clients.splice(clients.indexOf(clientA), 1);
  await Promise.all(a.map((n) => n.proc.stop('SIGKILL')));
  await broker.start();

  phase('A lost');
  // Failover to B: both B nodes promoted, RPO/RTO printed.
  const fo = await ferry(['failover', '--passive', `127.0.0.1:${b[0]!.port}`, '--namespace', 'test', '--receiver', ab.url, '--old-active', `127.0.0.1:${a[0]!.port}`, '--drain-timeout-ms', '15000', '--json']);
  const failover = JSON.parse(fo.stdout) as FailoverReport;
  t.is(failover.promoted.length, 2, `${fo.stdout}\n${fo.stderr}`);
  t.true(failover.promoted.every((p) => !p.fencedAfter));
  t.false(failover.oldActive!.reachable);
  t.true(failover.rpoMs !== null && failover.rpoMs > 0, 'A was lost unshipped: the RPO is not 0');
  t.true(failover.rtoMs >= 0);
  const text = await ferry(['failover', '--passive', `127.0.0.1:${b[1]!.port}`, '--namespace', 'test']);
  t.regex(text.stdout, /RPO \(data loss, measured\): .*\n {2}RTO \(site not writable\): \d+ ms/, text.stdout);
  await ab.proc.stop('SIGKILL');

  phase('failed over');
  // B is active: new keys and overwrites of keys A had shipped.
  const clientB = await connect(b);
  for (let i = 0; i < B_KEYS; i++) await clientB.put(new Aerospike.Key('test', SET, `b${i}`), { v: i, from: 'B' });
  for (let i = 0; i < B_OVERWRITES; i++) await clientB.put(new Aerospike.Key('test', SET, `k${i}`), { v: -i, from: 'B' });

  phase('B wrote');
  // A returns; failback.
  await restartSite(a);
  const fb = await ferry(['failback', '--a', `127.0.0.1:${a[1]!.port}`, '--b', `127.0.0.1:${b[0]!.port}`, '--namespace', 'test', '--receiver-ba', ba.url, '--policy', 'topic', '--unshipped-topic', 'ferry.A.unshipped', '--brokers', broker.brokers.join(','), '--json']);
  t.is(fb.code ?? 0, 0, `${fb.stdout}\n${fb.stderr}`);
  phase('failback done');
  const report = JSON.parse(fb.stdout) as FailbackReport;
  t.log(fb.stderr.trim());
  t.true(report.equal);
  // A has commit-to-device, so it lost nothing of what B had: every version levelling copied to A
  // would be a write of B's clients that the B -> A receiver never applied.
  t.is(report.copiedBWrites, 0, `writes made at B that did not reach A through B -> A: ${report.copiedBWriteDigests.join(', ')}`);
  const cut = Array.from({ length: CUT_KEYS }, (_, i) => `cut${i}`);
  t.deepEqual(report.unshipped.map((u) => u.key).sort(), [...cut].sort(), 'the listed unshipped writes are exactly the cut-off ones');
  t.deepEqual(report.unshipped.map((u) => u.digest).sort(), cut.map((k) => computeDigest(SET, k).toString('hex')).sort());
  t.true(report.unshipped.every((u) => u.set === SET && u.generation === 1 && u.lutMs > 0 && u.b === null && u.resolution === 'written-to-topic, b-version-kept'), JSON.stringify(report.unshipped[0]));
  // The operator's topic holds A's versions of exactly those writes, bins included.
  const kafka = new Kafka({ clientId: 'read-unshipped', brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: 'read-unshipped', maxWaitTimeInMs: 100 });
  const seen = new Map<string, string>();
  await consumer.connect();
  await consumer.subscribe({ topic: 'ferry.A.unshipped', fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers: Record<string, string> = {};
      for (const [k, h] of Object.entries(message.headers ?? {})) headers[k] = String(Array.isArray(h) ? h[0] : h);
      const v = decodeVersion(message.key, message.value, headers);
      seen.set(v.digest.toString('hex'), v.bins.find((x) => x.name === 'from')?.bytes.toString() ?? '');
    },
  });
  await waitFor(() => seen.size >= CUT_KEYS, 30_000, 'the unshipped versions in the topic');
  await consumer.disconnect();
  t.deepEqual([...seen.keys()].sort(), cut.map((k) => computeDigest(SET, k).toString('hex')).sort());
  t.true([...seen.values()].every((f) => f === 'A, never shipped'));
  t.true(report.switchoverWriteOutageMs !== null && report.switchoverWriteOutageMs >= 0);
  for (const n of a) t.regex(await info(n.port, 'get-config:context=namespace;id=test'), /fenced=false/);
  for (const n of b) t.regex(await info(n.port, 'get-config:context=namespace;id=test'), /fenced=true/);

  // A is active again: B's writes are there, the cut-off writes are not (keep-b); A -> B resumes.
  const clientA2 = await connect(a);
  t.is((await clientA2.get(new Aerospike.Key('test', SET, 'b3'))).bins.from, 'B');
  t.is((await clientA2.get(new Aerospike.Key('test', SET, 'k3'))).bins.v, -3);
  await t.throwsAsync(clientA2.get(new Aerospike.Key('test', SET, 'cut3')), { code: Aerospike.status.ERR_RECORD_NOT_FOUND });
  ab = await startReceiver({ dir, name: 'ab', brokers: broker.brokers, topic: 'ferry.A.test', destination: b, procs });
  for (let i = 0; i < 10; i++) await clientA2.put(new Aerospike.Key('test', SET, `after${i}`), { v: i });
  await converged(a, ab.url);
  phase('resumed');
  const verify = await ferry(['verify', '--a', `127.0.0.1:${a[2]!.port}`, '--b', `127.0.0.1:${b[1]!.port}`]);
  t.regex(verify.stdout, /result: EQUAL/, verify.stdout + verify.stderr);
  await t.throwsAsync(clientB.get(new Aerospike.Key('test', SET, 'cut3')), { code: Aerospike.status.ERR_RECORD_NOT_FOUND }, "A's late-shipped cut-off version lost to B's on B too");

  phase('verified');
  // Safe to re-run: it sees the switchover done and checks the A -> B receiver.
  const again = await ferry(['failback', '--a', `127.0.0.1:${a[0]!.port}`, '--b', `127.0.0.1:${b[1]!.port}`, '--namespace', 'test', '--receiver-ba', ba.url, '--receiver-ab', ab.url]);
  t.is(again.code ?? 0, 0, `${again.stdout}\n${again.stderr}`);
  t.regex(again.stderr, /continuing at step 7/);
  t.regex(again.stdout, /sites EQUAL, A active again/);
});
