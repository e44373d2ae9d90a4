/**
 * ferry verify: checksums over a real in-process namespace (order independence, tombstones, the
 * ferry-xdr system set left out), the info codecs, and the CLI against two real node processes
 * (equal sites, then three differing keys; differences that settle during the re-check).
 */
import test from 'ava';
import {
  XDR_SYSTEM_SET,
  checksums,
  formatChecksums,
  formatListing,
  parseChecksums,
  parseListing,
  partitionListing,
} from '../../store/checksums.js';
import { FerryClient } from '../../store/client/client.js';
import { toWireValue } from '../../store/client/values.js';
import { computeDigest, partitionOf } from '../../store/digest.js';
import { loadNodeConfig } from '../../store/config.js';
import { nodeInfoCommands } from '../../store/node-info.js';
import { openNamespace, openStoreNode, type FerryNode } from '../../store/node.js';
import type { Peer } from '../../store/wire/info.js';
import { startWireServer, type WireServer } from '../../store/wire/server.js';
import { evenOddView } from '../wire/cluster-fixture.js';
import type { Namespace } from '../../store/namespace/namespace.js';
import { PARTITION_COUNT, ResultCode, type RecordVersion } from '../../store/types.js';
import { diffListings, parseEndpoint, verifySites, type VerifyReport } from '../../ops/verify.js';
import { nsConfig, str, tempDir } from '../helpers/store.js';
import { startNode, type NodeProcess } from '../wire/node-process.js';
import { runCli } from './helpers.js';

const NS = 'test';
const SET = 'vt';
const RECORDS = 300;

// ---- in-process: checksums over a real namespace ----

async function memNs(t: import('ava').ExecutionContext): Promise<Namespace> {
  const { dir, cleanup } = tempDir('ferry-verify-');
  const ns = await openNamespace(nsConfig(dir, { 'storage-engine': 'memory' }));
  t.teardown(async () => {
    await ns.close();
    cleanup();
  });
  return ns;
}

function version(key: string, generation: number, lutMs: number, opts: { set?: string; tombstone?: boolean } = {}): RecordVersion {
  const set = opts.set ?? SET;
  return {
    namespace: NS,
    set,
    digest: computeDigest(set, key),
    generation,
    lutMs,
    voidTimeS: 0,
    tombstone: opts.tombstone ?? false,
    bins: opts.tombstone ? [] : [{ name: 'v', ...str(`${key}@${generation}`) }],
  };
}

test('checksums are order independent, cover tombstones, and single out a changed entry', async (t) => {
  const [n1, n2] = await Promise.all([memNs(t), memNs(t)]);
  const base = 1_790_000_000_000;
  const versions = Array.from({ length: 200 }, (_, i) => version(`k${i}`, 1 + (i % 5), base + i, { tombstone: i % 17 === 0 }));
  for (const v of versions) t.is((await n1.applyReplicated(v, 'generation')).resultCode, ResultCode.OK);
  for (const v of [...versions].reverse()) t.is((await n2.applyReplicated(v, 'generation')).resultCode, ResultCode.OK);

  const c1 = checksums(n1.store);
  const c2 = checksums(n2.store);
  t.is(c1.length, PARTITION_COUNT);
  t.deepEqual(c1, c2);
  t.is(c1.reduce((s, c) => s + c.count, 0), 200);
  t.is(c1.reduce((s, c) => s + c.tombstones, 0), versions.filter((v) => v.tombstone).length);
  const pid = partitionOf(versions[0]!.digest);
  const listing = partitionListing(n1.store, pid);
  t.true(listing.some((e) => e.digest === versions[0]!.digest.toString('hex') && e.tombstone));
  t.deepEqual(listing, partitionListing(n2.store, pid));

  // a newer version of k3 on n2 only: exactly its partition differs, and the listing diff names it
  const k3 = version('k3', 9, base + 10_000);
  t.is((await n2.applyReplicated(k3, 'generation')).resultCode, ResultCode.OK);
  const after = checksums(n2.store);
  const differing = after.filter((c, i) => c.hash !== c1[i]!.hash || c.count !== c1[i]!.count).map((c) => c.pid);
  t.deepEqual(differing, [partitionOf(k3.digest)]);
  const d = diffListings(differing[0]!, partitionListing(n1.store, differing[0]!), partitionListing(n2.store, differing[0]!));
  t.deepEqual(d.map((x) => x.digest), [k3.digest.toString('hex')]);
  t.is(d[0]!.b?.generation, 9);
  t.is(d[0]!.a?.generation, 4);
});

test('the ferry-xdr system set is left out, and checksums never create it', async (t) => {
  const [n1, n2] = await Promise.all([memNs(t), memNs(t)]);
  const v = version('same', 1, 1_790_000_000_000);
  await n1.applyReplicated(v, 'generation');
  await n2.applyReplicated(v, 'generation');
  checksums(n1.store);
  t.false(n1.store.allSetNames().includes(XDR_SYSTEM_SET));
  const cp = version('checkpoint-0', 3, 1_790_000_000_500, { set: XDR_SYSTEM_SET });
  t.is((await n1.applyReplicated(cp, 'generation')).resultCode, ResultCode.OK);
  t.true(n1.store.allSetNames().includes(XDR_SYSTEM_SET));
  t.deepEqual(checksums(n1.store), checksums(n2.store));
  t.deepEqual(partitionListing(n1.store, partitionOf(cp.digest)), partitionListing(n2.store, partitionOf(cp.digest)));
});

test('info value codecs round-trip and refuse garbage', (t) => {
  const list = [
    { pid: 0, count: 2, tombstones: 1, hash: '0123456789abcdef' },
    { pid: 7, count: 0, tombstones: 0, hash: '0000000000000000' },
    { pid: 4095, count: 1, tombstones: 0, hash: 'ffffffffffffffff' },
  ];
  const text = formatChecksums(list);
  t.is(text, '0:2:1:0123456789abcdef;4095:1:0:ffffffffffffffff');
  t.deepEqual([...parseChecksums(text).values()], [list[0], list[2]]);
  t.is(parseChecksums('').size, 0);
  t.throws(() => parseChecksums('4096:1:0:0123456789abcdef'), { name: 'ChecksumFormatError' });
  t.throws(() => parseChecksums('5:1:2:0123456789abcdef'), { name: 'ChecksumFormatError' });
  t.throws(() => parseChecksums('5:1:0123456789abcdef'), { name: 'ChecksumFormatError' });
  t.throws(() => parseChecksums('ERROR:20:namespace not found'), { name: 'ChecksumFormatError' });
  const entries = [{ digest: 'ab'.repeat(20), generation: 3, lutMs: 1_790_000_000_123, tombstone: true }];
  t.deepEqual(parseListing(formatListing(entries)), entries);
  t.deepEqual(parseListing(''), []);
  t.throws(() => parseListing('abc:1:2:0'), { name: 'ChecksumFormatError' });
  t.deepEqual(parseEndpoint('127.0.0.1:3000'), { host: '127.0.0.1', port: 3000 });
  t.deepEqual(parseEndpoint('[::1]:3100'), { host: '::1', port: 3100 });
  t.throws(() => parseEndpoint('localhost'), { name: 'VerifyError' });
});

test('a site of two nodes is compared partition by partition from each master', async (t) => {
  // site A: two in-process nodes splitting the partitions even/odd; site B: one node owning all
  const started: Array<{ node: FerryNode; server: WireServer; cleanup: () => void }> = [];
  t.teardown(async () => {
    for (const m of started) {
      await m.server.close();
      await m.node.close();
      m.cleanup();
    }
  });
  const open = async (id: string, view?: ReturnType<typeof evenOddView>) => {
    const { dir, cleanup } = tempDir('ferry-verify-site-');
    const node = await openStoreNode(loadNodeConfig({ env: { FERRY_NS_STORAGE_ENGINE: 'memory' }, overrides: { data: dir, 'node-id': id } }));
    const server = await startWireServer(node, { port: 0, extraInfo: nodeInfoCommands(node), ...(view ? { view } : {}) });
    started.push({ node, server, cleanup });
    return { node, server };
  };
  const peerOf = (i: number) => (): Peer => ({ nodeId: started[i]!.node.nodeId, addresses: [{ host: '127.0.0.1', port: started[i]!.server.port }] });
  const a0 = await open('A0', evenOddView(0, peerOf(1)));
  const a1 = await open('A1', evenOddView(1, peerOf(0)));
  const b = await open('B0');
  const ca = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: a0.server.port }], tendIntervalMs: 0 });
  const cb = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: b.server.port }], tendIntervalMs: 0 });
  t.teardown(() => {
    ca.close();
    cb.close();
  });
  t.is(ca.nodeIds().length, 2);
  const versions = Array.from({ length: 100 }, (_, i) => version(`c${i}`, 1 + (i % 4), 1_790_000_000_000 + i));
  for (const v of versions) {
    t.is((await ca.applyReplicated(v, 'generation')).resultCode, ResultCode.OK);
    t.is((await cb.applyReplicated(v, 'generation')).resultCode, ResultCode.OK);
  }
  const sites = { a: { host: '127.0.0.1', port: a1.server.port }, b: { host: '127.0.0.1', port: b.server.port }, namespace: NS, recheckMs: 0 };
  let r = await verifySites(sites);
  t.true(r.equal, JSON.stringify(r));
  t.is(r.recordsA, 100);

  // a stray copy on the node that does not master its partition is not the site's data
  const even = versions.find((v) => partitionOf(v.digest) % 2 === 0)!;
  await a1.node.namespace(NS)!.applyReplicated({ ...even, generation: 99 }, 'generation');
  r = await verifySites(sites);
  t.true(r.equal, JSON.stringify(r));

  // a newer version on the master is a difference
  const odd = versions.find((v) => partitionOf(v.digest) % 2 === 1)!;
  t.is((await ca.applyReplicated({ ...odd, generation: 50, lutMs: odd.lutMs + 1 }, 'generation')).resultCode, ResultCode.OK);
  r = await verifySites(sites);
  t.false(r.equal);
  t.deepEqual(r.keys.map((k) => [k.digest, k.a?.generation, k.b?.generation]), [[odd.digest.toString('hex'), 50, odd.generation]]);
});

// ---- two real node processes ----

let siteA: NodeProcess;
let siteB: NodeProcess;
let clientA: FerryClient;
let clientB: FerryClient;

test.before(async () => {
  [siteA, siteB] = await Promise.all([startNode({ extraArgs: ['--storage', 'memory'] }), startNode({ extraArgs: ['--storage', 'memory'] })]);
  [clientA, clientB] = await Promise.all([
    FerryClient.connect({ hosts: [{ host: siteA.host, port: siteA.port }], tendIntervalMs: 0 }),
    FerryClient.connect({ hosts: [{ host: siteB.host, port: siteB.port }], tendIntervalMs: 0 }),
  ]);
});

test.after.always(async () => {
  clientA?.close();
  clientB?.close();
  await Promise.all([siteA?.destroy(), siteB?.destroy()]);
});

const addr = (n: NodeProcess): string => `${n.host}:${n.port}`;


/** Copies one digest's current version from A to B with A's generation and LUT (a replicated write). */
async function copyToB(digest: string, generation: number, lutMs: number, tombstone: boolean): Promise<void> {
  const d = Buffer.from(digest, 'hex');
  let bins: RecordVersion['bins'] = [];
  let voidTimeS = 0;
  if (!tombstone) {
    const rec = await clientA.get({ namespace: NS, set: SET, digest: d });
    if (!rec) throw new Error(`record ${digest} vanished from A`);
    bins = Object.entries(rec.bins).map(([name, v]) => ({ name, ...toWireValue(v) }));
    voidTimeS = rec.voidTimeS;
  }
  const r = await clientB.applyReplicated({ namespace: NS, set: SET, digest: d, generation, lutMs, voidTimeS, tombstone, bins }, 'generation');
  if (r.resultCode !== ResultCode.OK) throw new Error(`apply of ${digest} answered ${r.resultCode}`);
}

/** Copies every partition of A that differs from B onto B. */
async function syncAToB(): Promise<void> {
  const ca = parseChecksums(await clientA.infoValue(`ferry-checksums:namespace=${NS}`));
  const cb = parseChecksums(await clientB.infoValue(`ferry-checksums:namespace=${NS}`));
  for (const [pid, c] of ca) {
    if (cb.get(pid)?.hash === c.hash) continue;
    const listB = new Map(parseListing(await clientB.infoValue(`ferry-digests:namespace=${NS};partition=${pid}`)).map((e) => [e.digest, e]));
    for (const e of parseListing(await clientA.infoValue(`ferry-digests:namespace=${NS};partition=${pid}`))) {
      const b = listB.get(e.digest);
      if (b && b.generation === e.generation && b.lutMs === e.lutMs && b.tombstone === e.tombstone) continue;
      await copyToB(e.digest, e.generation, e.lutMs, e.tombstone);
    }
  }
}

const keyOf = (k: string) => ({ namespace: NS, set: SET, key: k });
const hexOf = (k: string): string => computeDigest(SET, k).toString('hex');

test.serial('equal sites: ferry verify exits 0 and says equal', async (t) => {
  for (let i = 0; i < RECORDS; i++) await clientA.put(keyOf(`r${i}`), { n: i, s: `value-${i}` }, { sendKey: true });
  for (let i = 0; i < RECORDS; i += 50) await clientA.remove(keyOf(`r${i}`), { durableDelete: true });
  await syncAToB();

  const text = await runCli(['verify', '--a', addr(siteA), '--b', addr(siteB)]);
  t.is(text.code, 0, text.stdout + text.stderr);
  t.regex(text.stdout, /EQUAL/);
  t.regex(text.stdout, /partitions compared: 4096/);

  const json = await runCli(['verify', '--a', addr(siteA), '--b', addr(siteB), '--namespace', NS, '--json']);
  t.is(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout) as VerifyReport;
  t.true(r.equal);
  t.is(r.recordsA, r.recordsB);
  t.true(r.recordsA >= RECORDS - RECORDS / 50 && r.recordsA <= RECORDS, `records ${r.recordsA}`);
  t.is(r.differingKeys, 0);
});

test.serial('a difference that settles during the re-check is not reported', async (t) => {
  await clientA.put(keyOf('late'), { n: 1 });
  let copied: Promise<void> | undefined;
  const report = await verifySites({
    a: { host: siteA.host, port: siteA.port },
    b: { host: siteB.host, port: siteB.port },
    namespace: NS,
    recheckMs: 3000,
    onProgress: (phase, done, total) => {
      if (phase === 'listings' && done === total && !copied) copied = syncAToB();
    },
  });
  await copied;
  t.true(report.equal, JSON.stringify(report));
  t.is(report.candidateKeys, 1);
  t.is(report.settledKeys, 1);
  t.is(report.differingKeys, 0);
});

test.serial('records of the ferry-xdr system set never count as differences', async (t) => {
  await clientA.put({ namespace: NS, set: XDR_SYSTEM_SET, key: 'checkpoint:B:17' }, { t: Date.now() });
  const r = await verifySites({ a: { host: siteA.host, port: siteA.port }, b: { host: siteB.host, port: siteB.port }, namespace: NS, recheckMs: 0 });
  t.true(r.equal, JSON.stringify(r));
});

test.serial('a tombstone on one site only is no difference unless --strict-tombstones', async (t) => {
  const gone = { namespace: NS, set: SET, digest: computeDigest(SET, 'reclaimed-on-a'), generation: 4, lutMs: Date.now() - 1000, voidTimeS: 0, tombstone: true, bins: [] };
  t.is((await clientB.applyReplicated(gone, 'generation')).resultCode, ResultCode.OK);
  const loose = await runCli(['verify', '--a', addr(siteA), '--b', addr(siteB), '--json', '--recheck-ms', '0']);
  t.is(loose.code, 0, loose.stdout + loose.stderr);
  const r = JSON.parse(loose.stdout) as VerifyReport;
  t.is(r.tombstoneOnlyKeys, 1);
  t.is(r.tombstonesB, r.tombstonesA + 1);
  const strict = await runCli(['verify', '--a', addr(siteA), '--b', addr(siteB), '--json', '--recheck-ms', '0', '--strict-tombstones']);
  t.is(strict.code, 1);
  const s = JSON.parse(strict.stdout) as VerifyReport;
  t.deepEqual(s.keys.map((k) => k.digest), [gone.digest.toString('hex')]);
  t.is(s.keys[0]!.a, undefined);
  // make A hold the same tombstone so the next test sees exactly its own differences
  t.is((await clientA.applyReplicated(gone, 'generation')).resultCode, ResultCode.OK);
});

test.serial('update on B, delete on A, insert on B: exit 1 listing exactly those three digests', async (t) => {
  await clientB.put(keyOf('r1'), { n: -1 });
  await clientA.remove(keyOf('r2'));
  await clientB.put(keyOf('only-on-b'), { n: 42 });
  const expected = [hexOf('r1'), hexOf('r2'), hexOf('only-on-b')].sort();

  const json = await runCli(['verify', '--a', addr(siteA), '--b', addr(siteB), '--json', '--recheck-ms', '300']);
  t.is(json.code, 1, json.stderr);
  const r = JSON.parse(json.stdout) as VerifyReport;
  t.false(r.equal);
  t.is(r.differingKeys, 3);
  t.deepEqual(r.keys.map((k) => k.digest).sort(), expected);
  const byDigest = new Map(r.keys.map((k) => [k.digest, k]));
  const r1 = byDigest.get(hexOf('r1'))!;
  t.true(r1.b!.generation > r1.a!.generation);
  t.is(byDigest.get(hexOf('only-on-b'))!.a, undefined);
  t.is(byDigest.get(hexOf('only-on-b'))!.b?.tombstone, false);
  const r2 = byDigest.get(hexOf('r2'))!;
  t.false(r2.b!.tombstone);
  t.true(r2.a === undefined || r2.a.tombstone);

  const text = await runCli(['verify', '--a', addr(siteA), '--b', addr(siteB), '--recheck-ms', '0', '--max-list', '2']);
  t.is(text.code, 1);
  t.regex(text.stdout, /DIFFERENT \(3 keys/);
  t.is(expected.filter((d) => text.stdout.includes(d)).length, 2);
  t.regex(text.stdout, /1 more/);
});

test.serial('usage, namespace and connection errors exit 2', async (t) => {
  const missing = await runCli(['verify', '--a', addr(siteA)]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--b/);
  const badOption = await runCli(['verify', '--a', addr(siteA), '--b', addr(siteB), '--bogus']);
  t.is(badOption.code, 2);
  const noNs = await runCli(['verify', '--a', addr(siteA), '--b', addr(siteB), '--namespace', 'nope', '--json']);
  t.is(noNs.code, 2);
  t.is((JSON.parse(noNs.stdout) as { error: { code: string } }).error.code, 'NAMESPACE_NOT_FOUND');
  const down = await runCli(['verify', '--a', addr(siteA), '--b', '127.0.0.1:1', '--timeout-ms', '2000']);
  t.is(down.code, 2);
  t.regex(down.stderr, /site B/);
});
