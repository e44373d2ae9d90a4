/**
 * The official `aerospike` npm client (C client 7.4 inside) against a real ferry node process.
 */
import test from 'ava';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startNode, type NodeProcess } from './node-process.js';

/* The official client is CommonJS with loose typings; it is driven through `any` on purpose. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');
const { status } = Aerospike;
const op = Aerospike.operations;

let node: NodeProcess;
let client: Any;
let ns = 'test';

const connect = (): Promise<Any> =>
  Aerospike.connect({
    hosts: [{ addr: node.host, port: node.port }],
    log: { level: Aerospike.log.OFF },
    policies: {
      read: { totalTimeout: 5000 },
      write: { totalTimeout: 5000 },
      operate: { totalTimeout: 5000 },
      batch: { totalTimeout: 10000 },
      scan: { totalTimeout: 30000 },
      remove: { totalTimeout: 5000 },
      info: { timeout: 5000 },
    },
  });

const key = (k: string | number, set = 'demo'): Any => new Aerospike.Key(ns, set, k);

async function codeOf(p: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as { code: number }).code;
  }
}

test.before(async () => {
  // Commit-to-device makes writes wait for group commit, so a hot key really queues.
  node = await startNode({ extraArgs: ['--commit-to-device'] });
  client = await connect();
  const namespaces = String(await client.infoAny('namespaces')).split('\t')[1]!.trim().split(';');
  ns = namespaces.includes('test') ? 'test' : namespaces[0]!;
});

test.after.always(async () => {
  await client?.close();
  await node?.destroy();
});

test.serial('connects as a healthy one-node cluster and answers info', async (t) => {
  t.true(client.isConnected());
  const nodes = client.getNodes();
  t.is(nodes.length, 1);
  const raw = (cmd: string): Promise<string> => client.infoAny(cmd).then((s: string) => s.slice(s.indexOf('\t') + 1).trim());
  t.is(await raw('build'), '8.1.1.0');
  t.regex(await raw('statistics'), /cluster_size=1/);
  t.regex(await raw(`namespace/${ns}`), /objects=/);
  t.is(await raw('namespace/nope'), 'type=unknown');
  t.regex(await raw('replicas'), new RegExp(`^${ns}:0,1,/{682}8=`));
  t.is(await raw('peers-clear-std'), `1,${node.port},[]`);
  t.regex(await raw('edition'), /Edition/);
  t.is(await codeOf(client.infoAny('no-such-command')), status.ERR_REQUEST_INVALID);
  t.regex(await raw('features'), /pscans/);
});

test.serial('a client configured with a user connects: login is answered "security not enabled"', async (t) => {
  const withUser = await Aerospike.connect({
    hosts: [{ addr: node.host, port: node.port }],
    user: 'admin',
    password: 'admin',
    log: { level: Aerospike.log.OFF },
  });
  try {
    await withUser.put(key('with-user'), { a: 1 });
    t.is((await withUser.get(key('with-user'))).bins.a, 1);
  } finally {
    await withUser.close();
  }
});

test.serial('CRUD across every value type', async (t) => {
  const k = key('types');
  const bins = {
    i: 42,
    neg: -7,
    big: 2 ** 52 + 1,
    f: 1.5,
    d: new Aerospike.Double(2.0),
    s: 'hello ünïcode',
    e: '',
    b: Buffer.from([0, 1, 2, 255]),
    t: true,
    l: [1, 'a', 2.5, [true, null], { x: 1 }],
    m: { a: 1, b: 'x', c: [1, 2], d: { e: Buffer.from([9]) } },
    g: new Aerospike.GeoJSON({ type: 'Point', coordinates: [103.913, 1.308] }),
  };
  await client.put(k, bins);
  const rec = await client.get(k);
  t.is(rec.gen, 1);
  t.is(rec.bins.i, 42);
  t.is(rec.bins.neg, -7);
  t.is(rec.bins.big, 2 ** 52 + 1);
  t.is(rec.bins.f, 1.5);
  t.is(rec.bins.d, 2);
  t.is(rec.bins.s, 'hello ünïcode');
  t.is(rec.bins.e, '');
  t.deepEqual(rec.bins.b, Buffer.from([0, 1, 2, 255]));
  t.is(rec.bins.t, true);
  t.deepEqual(rec.bins.l, [1, 'a', 2.5, [true, null], { x: 1 }]);
  t.deepEqual(rec.bins.m, { a: 1, b: 'x', c: [1, 2], d: { e: Buffer.from([9]) } });
  // The Node client hands GeoJSON back as its text (after skipping the particle's cell header).
  t.deepEqual(JSON.parse(rec.bins.g), { type: 'Point', coordinates: [103.913, 1.308] });

  const sel = await client.select(k, ['i', 's', 'missing']);
  t.deepEqual(Object.keys(sel.bins).sort(), ['i', 's']);
  t.true(await client.exists(k));
  t.false(await client.exists(key('never-written')));
  t.is(await codeOf(client.get(key('never-written'))), status.ERR_RECORD_NOT_FOUND);

  await client.put(k, { i: 43, s: null });
  const upd = await client.get(k);
  t.is(upd.gen, 2);
  t.is(upd.bins.i, 43);
  t.false('s' in upd.bins);
  t.is(upd.bins.f, 1.5);

  await client.remove(k);
  t.false(await client.exists(k));
  t.is(await codeOf(client.remove(k)), status.ERR_RECORD_NOT_FOUND);
  // Integer and bytes keys, records without a set.
  await client.put(new Aerospike.Key(ns, 'demo', 7), { v: 1 });
  await client.put(new Aerospike.Key(ns, 'demo', Buffer.from([1, 2, 3])), { v: 2 });
  await client.put(new Aerospike.Key(ns, null, 'noset'), { v: 3 });
  t.is((await client.get(new Aerospike.Key(ns, 'demo', 7))).bins.v, 1);
  t.is((await client.get(new Aerospike.Key(ns, 'demo', Buffer.from([1, 2, 3])))).bins.v, 2);
  t.is((await client.get(new Aerospike.Key(ns, null, 'noset'))).bins.v, 3);
});

test.serial('write policies and their error codes', async (t) => {
  const k = key('policies');
  await client.put(k, { a: 1, b: 2 });
  const CREATE = { exists: Aerospike.policy.exists.CREATE };
  t.is(await codeOf(client.put(k, { a: 9 }, {}, CREATE)), status.ERR_RECORD_EXISTS);
  t.is(await codeOf(client.put(key('policies-missing'), { a: 1 }, {}, { exists: Aerospike.policy.exists.UPDATE })), status.ERR_RECORD_NOT_FOUND);
  t.is(await codeOf(client.put(key('policies-missing'), { a: 1 }, {}, { exists: Aerospike.policy.exists.REPLACE })), status.ERR_RECORD_NOT_FOUND);
  await client.put(k, { c: 3 }, {}, { exists: Aerospike.policy.exists.REPLACE });
  t.deepEqual((await client.get(k)).bins, { c: 3 });
  await client.put(k, { d: 4 }, {}, { exists: Aerospike.policy.exists.UPDATE });
  t.deepEqual((await client.get(k)).bins, { c: 3, d: 4 });
  await client.put(k, { e: 5 }, {}, { exists: Aerospike.policy.exists.CREATE_OR_REPLACE });
  t.deepEqual((await client.get(k)).bins, { e: 5 });
  const gen = (await client.get(k)).gen;
  t.is(await codeOf(client.put(k, { e: 6 }, { gen: gen + 5 }, { gen: Aerospike.policy.gen.EQ })), status.ERR_RECORD_GENERATION);
  await client.put(k, { e: 6 }, { gen }, { gen: Aerospike.policy.gen.EQ });
  t.is((await client.get(k)).bins.e, 6);
  t.is(await codeOf(client.put(k, { e: 7 }, { gen: 1 }, { gen: Aerospike.policy.gen.GT })), status.ERR_RECORD_GENERATION);
  t.is(await codeOf(client.put(k, { e: 7 }, { gen: gen + 10 }, { gen: Aerospike.policy.gen.GT })), 'ok');
  // Durable delete, then create-only succeeds.
  await client.remove(k, { durableDelete: true });
  t.is(await codeOf(client.put(k, { a: 1 }, {}, CREATE)), 'ok');
  // Bad TTL (beyond 10 years) is a parameter error.
  t.is(await codeOf(client.put(key('bad-ttl'), { a: 1 }, { ttl: 315_360_001 })), status.ERR_REQUEST_INVALID);
});

test.serial('TTL: set, read back, keep, never expire, and expiry', async (t) => {
  const k = key('ttl');
  await client.put(k, { a: 1 }, { ttl: 100 });
  const r = await client.get(k);
  t.true(r.ttl > 90 && r.ttl <= 100, `ttl ${r.ttl}`);
  await client.put(k, { a: 2 }, { ttl: Aerospike.ttl.DONT_UPDATE });
  const kept = await client.get(k);
  t.true(kept.ttl > 90 && kept.ttl <= 100, `kept ttl ${kept.ttl}`);
  await client.put(k, { a: 3 }, { ttl: Aerospike.ttl.NEVER_EXPIRE });
  t.is((await client.get(k)).ttl, -1);
  await client.operate(k, [op.touch(200)]);
  const touched = await client.get(k);
  t.true(touched.ttl > 190 && touched.ttl <= 200, `touched ttl ${touched.ttl}`);
  const short = key('ttl-short');
  // ttl 2: the void time is whole seconds, so at least one second is left for the exists check.
  await client.put(short, { a: 1 }, { ttl: 2 });
  t.true(await client.exists(short));
  await new Promise((r) => setTimeout(r, 3200));
  t.false(await client.exists(short));
  t.is(await codeOf(client.get(short)), status.ERR_RECORD_NOT_FOUND);
});

test.serial('operate with scalar ops; unsupported ops answer UNSUPPORTED_FEATURE', async (t) => {
  const k = key('operate');
  await client.put(k, { n: 1, s: 'mid', x: 1 });
  const r = await client.operate(k, [op.incr('n', 4), op.append('s', '-end'), op.prepend('s', 'start-'), op.read('n'), op.read('s')]);
  t.is(r.bins.n, 5);
  t.is(r.bins.s, 'start-mid-end');
  const f = await client.operate(key('operate-float'), [op.incr('f', 1.25), op.read('f')]);
  t.is(f.bins.f, 1.25);
  t.is(await codeOf(client.operate(k, [op.incr('s', 1)])), status.ERR_BIN_INCOMPATIBLE_TYPE);
  await client.operate(k, [op.write('w', 'new'), op.write('x', null)]);
  const after = await client.get(k);
  t.is(after.bins.w, 'new');
  t.false('x' in after.bins);
  t.is(await codeOf(client.operate(key('operate-missing'), [op.touch(10)])), status.ERR_RECORD_NOT_FOUND);
  const del = await client.operate(k, [op.read('n'), op.delete()]);
  t.is(del.bins.n, 5);
  t.false(await client.exists(k));
  await client.put(k, { l: [1, 2] });
  t.is(await codeOf(client.operate(k, [Aerospike.lists.append('l', 3)])), status.ERR_UNSUPPORTED_FEATURE);
  t.is(await codeOf(client.operate(k, [Aerospike.maps.put('m', 'a', 1)])), status.ERR_UNSUPPORTED_FEATURE);
  t.deepEqual((await client.get(k)).bins.l, [1, 2]);
  const exp = Aerospike.exp;
  t.is(await codeOf(client.get(k, { filterExpression: exp.eq(exp.binInt('i'), exp.int(1)) })), status.ERR_UNSUPPORTED_FEATURE);
  t.is(await codeOf(client.apply(k, { module: 'm', funcname: 'f', args: [] })), status.ERR_UNSUPPORTED_FEATURE);
});

test.serial('send-key stores the user key and returns it on scans', async (t) => {
  const k = key('sendkey', 'keys');
  await client.put(k, { v: 1 }, {}, { key: Aerospike.policy.key.SEND });
  const seen: Any[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = client.scan(ns, 'keys').foreach();
    s.on('data', (r: Any) => seen.push(r));
    s.on('error', reject);
    s.on('end', () => resolve());
  });
  t.is(seen.length, 1);
  t.is(seen[0].key.key, 'sendkey');
  t.is(seen[0].bins.v, 1);
});

test.serial('compressed requests and responses', async (t) => {
  const k = key('compressed');
  const big = 'z'.repeat(5000);
  await client.put(k, { big }, {}, { compress: true });
  const r = await client.get(k, { compress: true });
  t.is(r.bins.big, big);
});

test.serial('batch: reads, exists, selected bins, writes, removes, operates', async (t) => {
  for (let i = 0; i < 10; i++) await client.put(key(`b${i}`), { i, s: `v${i}` });
  const reads = await client.batchRead([
    { key: key('b1'), readAllBins: true },
    { key: key('b-missing'), readAllBins: true },
    { key: key('b2'), bins: ['s'] },
    { key: key('b3'), readAllBins: false },
  ]);
  t.is(reads[0].status, status.OK);
  t.deepEqual(reads[0].record.bins, { i: 1, s: 'v1' });
  t.is(reads[1].status, status.ERR_RECORD_NOT_FOUND);
  t.deepEqual(reads[2].record.bins, { s: 'v2' });
  t.is(reads[3].status, status.OK);
  const many = await client.batchRead(Array.from({ length: 10 }, (_, i) => ({ key: key(`b${i}`), readAllBins: true })));
  t.deepEqual(many.map((r: Any) => r.record.bins.i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const bt = Aerospike.batchType;
  const writes = await client.batchWrite([
    { type: bt.BATCH_WRITE, key: key('bw1'), ops: [op.write('a', 1), op.write('b', 'x')] },
    { type: bt.BATCH_REMOVE, key: key('b4') },
    { type: bt.BATCH_WRITE, key: key('b5'), ops: [op.incr('i', 10), op.read('i')] },
    { type: bt.BATCH_READ, key: key('b6'), readAllBins: true },
    { type: bt.BATCH_REMOVE, key: key('bw-missing') },
  ]);
  t.is(writes[0].status, status.OK);
  t.is(writes[1].status, status.OK);
  t.is(writes[2].status, status.OK);
  t.is(writes[2].record.bins.i, 15);
  t.is(writes[3].record.bins.i, 6);
  t.is(writes[4].status, status.ERR_RECORD_NOT_FOUND);
  t.deepEqual((await client.get(key('bw1'))).bins, { a: 1, b: 'x' });
  t.false(await client.exists(key('b4')));
  t.is((await client.get(key('b5'))).bins.i, 15);
});

test.serial('scan: all partitions, select, nobins, maxRecords; background scans and queries refused', async (t) => {
  for (let i = 0; i < 200; i++) await client.put(key(i, 'scanset'), { i, pad: 'p'.repeat(50) });
  const run = (configure: (s: Any) => void, policy: Any = {}): Promise<Any[]> =>
    new Promise((resolve, reject) => {
      const s = client.scan(ns, 'scanset');
      configure(s);
      const out: Any[] = [];
      const stream = s.foreach(policy);
      stream.on('data', (r: Any) => out.push(r));
      stream.on('error', reject);
      stream.on('end', () => resolve(out));
    });
  const all = await run(() => {});
  t.is(all.length, 200);
  t.deepEqual(all.map((r) => r.bins.i).sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i));
  const selected = await run((s) => s.select('i'));
  t.true(selected.every((r) => Object.keys(r.bins).join() === 'i'));
  const nobins = await run((s) => (s.nobins = true));
  t.is(nobins.length, 200);
  t.true(nobins.every((r) => Object.keys(r.bins ?? {}).length === 0));
  const limited = await run(() => {}, { maxRecords: 50 });
  t.true(limited.length > 0 && limited.length <= 50, `got ${limited.length}`);
  const throttled = await run(() => {}, { recordsPerSecond: 1000 });
  t.is(throttled.length, 200);
  const bg = client.scan(ns, 'scanset');
  t.is(await codeOf(bg.operate([op.write('bg', 1)]).then((job: Any) => job.waitUntilDone(100))), status.ERR_UNSUPPORTED_FEATURE);
  const q = client.query(ns, 'scanset');
  q.where(Aerospike.filter.equal('i', 7));
  t.is(await codeOf(q.results()), status.ERR_INDEX_NOT_FOUND);
  t.is((await client.get(key(5, 'scanset'))).bins.bg, undefined);
});

test.serial('paginated query resumes from per-partition digests without loss or repeats', async (t) => {
  const q = client.query(ns, 'scanset', { paginate: true, maxRecords: 30 });
  const seen: number[] = [];
  for (let page = 0; page < 30; page++) {
    const results: Any[] = await q.results();
    seen.push(...results.map((r) => r.bins.i));
    if (!q.hasNextPage()) break;
  }
  t.is(new Set(seen).size, seen.length, 'a record came twice');
  t.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i));
});

test.serial('info operations: sets, bins, truncate, set-config refusal', async (t) => {
  const raw = (cmd: string): Promise<string> => client.infoAny(cmd).then((s: string) => s.slice(s.indexOf('\t') + 1).trim());
  await client.put(key('t1', 'trunc'), { a: 1 });
  await client.put(key('t2', 'trunc'), { a: 2 });
  t.regex(await raw('sets'), /set=trunc:objects=2/);
  t.regex(await raw(`bins/${ns}`), /bin_names=\d+/);
  await client.truncate(ns, 'trunc', 0);
  t.false(await client.exists(key('t1', 'trunc')));
  t.true(await client.exists(key(1, 'scanset')));
  t.is(await codeOf(client.infoAny(`set-config:context=namespace;id=${ns};no-such-setting=1`)), status.ERR_REQUEST_INVALID);
  t.regex(await raw('get-config:context=service'), /=/);
  t.is(await codeOf(client.createIntegerIndex({ ns, set: 'trunc', bin: 'a', index: 'idx_a' })), status.ERR_UNSUPPORTED_FEATURE);
  const udfFile = path.join(mkdtempSync(path.join(tmpdir(), 'ferry-udf-')), 'm.lua');
  writeFileSync(udfFile, 'function f(r) return 1 end\n');
  t.is(await codeOf(client.udfRegister(udfFile)), status.ERR_UNSUPPORTED_FEATURE);
  rmSync(path.dirname(udfFile), { recursive: true, force: true });
});

test.serial('hot key: writes queued beyond transaction-pending-limit answer KEY_BUSY', async (t) => {
  const raw = (cmd: string): Promise<string> => client.infoAny(cmd).then((s: string) => s.slice(s.indexOf('\t') + 1).trim());
  t.is(await raw(`set-config:context=namespace;id=${ns};transaction-pending-limit=2`), 'ok');
  t.regex(await raw(`get-config:context=namespace;id=${ns}`), /transaction-pending-limit=2/);
  // A lone node: the configured replication factor (default 2) is reported; the effective one is 1.
  t.regex(await raw(`get-config:context=namespace;id=${ns}`), /(^|;)replication-factor=2(;|$)/);
  t.regex(await raw(`namespace/${ns}`), /(^|;)effective_replication_factor=1(;|$)/);
  try {
    const k = key('hot');
    await client.put(k, { n: 0 });
    const results = await Promise.all(Array.from({ length: 60 }, () => codeOf(client.operate(k, [op.incr('n', 1)]))));
    const ok = results.filter((r) => r === 'ok').length;
    const busy = results.filter((r) => r === status.ERR_RECORD_BUSY).length;
    t.is(ok + busy, results.length, `unexpected codes: ${[...new Set(results)].join(',')}`);
    t.true(busy > 0, 'no KEY_BUSY');
    t.true(ok > 0);
    t.is((await client.get(k)).bins.n, ok);
  } finally {
    await raw(`set-config:context=namespace;id=${ns};transaction-pending-limit=20`);
  }
});

test.serial('restart keeps every record', async (t) => {
  const keys = Array.from({ length: 50 }, (_, i) => key(`persist-${i}`));
  for (const [i, k] of keys.entries()) await client.put(k, { i, s: `v${i}`, l: [i, 'x'] });
  await client.remove(keys[0]);
  await client.close();
  await node.restart();
  client = await connect();
  t.false(await client.exists(keys[0]));
  for (const [i, k] of keys.entries()) {
    if (i === 0) continue;
    const r = await client.get(k);
    t.deepEqual(r.bins, { i, s: `v${i}`, l: [i, 'x'] });
  }
  t.is((await client.get(key(3, 'scanset'))).bins.i, 3);
});
