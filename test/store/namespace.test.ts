import test from 'ava';
import { openNamespace } from '../../store/node.js';
import { ExistsPolicy, GenerationPolicy, OpType, ParticleType, ResultCode, Ttl, WriteKind, CITRUSLEAF_EPOCH_S, type Clock } from '../../store/types.js';
import { binsOf, blob, dbl, get, int, nsConfig, op, put, remove, str, tempDir } from '../helpers/store.js';
import { computeDigest, partitionOf } from '../../store/digest.js';
import type { PartitionId } from '../../store/types.js';
import { shuffled, testRandom } from '../helpers/seed.js';

async function withNs(t: import('ava').ExecutionContext, keys: Record<string, unknown> = {}, clock?: Clock) {
  const { dir, cleanup } = tempDir();
  const ns = await openNamespace(nsConfig(dir, keys), clock);
  t.teardown(async () => {
    await ns.close();
    cleanup();
  });
  return ns;
}

for (const engine of ['memory', 'device'] as const) {
  test(`${engine}: put, get, generation, LUT and update-merge semantics`, async (t) => {
    const ns = await withNs(t, { 'storage-engine': engine });
    let r = await ns.execute(put('k1', { a: str('x'), n: int(5) }));
    t.is(r.resultCode, ResultCode.OK);
    t.is(r.generation, 1);
    const lut1 = r.lutMs;
    r = await ns.execute(put('k1', { b: dbl(1.5) }));
    t.is(r.generation, 2);
    t.true(r.lutMs > lut1, 'LUT strictly increases per record');
    r = await ns.execute(get('k1'));
    t.deepEqual(binsOf(r.bins), { a: 'x', n: 5n, b: 1.5 });
    t.is(r.key?.bytes.toString(), 'k1', 'stored user key is returned');
    r = await ns.execute(get('k1', { readAll: false, ops: [{ op: OpType.READ, bin: 'n', value: { type: ParticleType.NULL, bytes: Buffer.alloc(0) } }] }));
    t.deepEqual(binsOf(r.bins), { n: 5n });
    r = await ns.execute(get('k1', { headerOnly: true, readAll: false }));
    t.is(r.generation, 2);
    t.deepEqual(r.bins, []);
    t.is((await ns.execute(get('nope'))).resultCode, ResultCode.NOT_FOUND);
  });

  test(`${engine}: write policies and generation checks`, async (t) => {
    const ns = await withNs(t, { 'storage-engine': engine });
    t.is((await ns.execute(put('p', { a: int(1) }, { exists: ExistsPolicy.UPDATE_ONLY }))).resultCode, ResultCode.NOT_FOUND);
    t.is((await ns.execute(put('p', { a: int(1) }, { exists: ExistsPolicy.REPLACE_ONLY }))).resultCode, ResultCode.NOT_FOUND);
    t.is((await ns.execute(put('p', { a: int(1) }, { exists: ExistsPolicy.CREATE_ONLY }))).resultCode, ResultCode.OK);
    t.is((await ns.execute(put('p', { a: int(2) }, { exists: ExistsPolicy.CREATE_ONLY }))).resultCode, ResultCode.RECORD_EXISTS);
    t.is((await ns.execute(put('p', { b: int(2) }, { exists: ExistsPolicy.UPDATE_ONLY }))).resultCode, ResultCode.OK);
    t.deepEqual(binsOf((await ns.execute(get('p'))).bins), { a: 1n, b: 2n });
    t.is((await ns.execute(put('p', { c: int(3) }, { exists: ExistsPolicy.REPLACE }))).resultCode, ResultCode.OK);
    t.deepEqual(binsOf((await ns.execute(get('p'))).bins), { c: 3n }, 'replace drops other bins');
    const gen = (await ns.execute(get('p'))).generation;
    t.is((await ns.execute(put('p', { c: int(4) }, { generationPolicy: GenerationPolicy.EXPECT_EQUAL, generation: gen + 1 }))).resultCode, ResultCode.GENERATION);
    t.is((await ns.execute(put('p', { c: int(4) }, { generationPolicy: GenerationPolicy.EXPECT_EQUAL, generation: gen }))).resultCode, ResultCode.OK);
    t.is((await ns.execute(put('p', { c: int(5) }, { generationPolicy: GenerationPolicy.EXPECT_GREATER, generation: gen + 1 }))).resultCode, ResultCode.GENERATION);
    t.is((await ns.execute(put('p', { c: int(5) }, { generationPolicy: GenerationPolicy.EXPECT_GREATER, generation: gen + 5 }))).resultCode, ResultCode.OK);
  });

  test(`${engine}: bin operations and their type errors`, async (t) => {
    const ns = await withNs(t, { 'storage-engine': engine });
    await ns.execute(put('o', { i: int(10), f: dbl(1.25), s: str('mid'), b: blob(Buffer.from([2])) }));
    const nul = { type: ParticleType.NULL, bytes: Buffer.alloc(0) } as const;
    let r = await ns.execute(
      op('o', [
        { op: OpType.INCR, bin: 'i', value: int(-3) },
        { op: OpType.INCR, bin: 'f', value: dbl(0.5) },
        { op: OpType.APPEND, bin: 's', value: str('>') },
        { op: OpType.PREPEND, bin: 's', value: str('<') },
        { op: OpType.APPEND, bin: 'b', value: blob(Buffer.from([3])) },
        { op: OpType.INCR, bin: 'new', value: int(7) },
        { op: OpType.WRITE, bin: 'gone', value: str('x') },
        { op: OpType.WRITE, bin: 'gone', value: nul },
        { op: OpType.READ, bin: 'i', value: nul },
        { op: OpType.READ, bin: 's', value: nul },
      ]),
    );
    t.is(r.resultCode, ResultCode.OK);
    t.deepEqual(binsOf(r.bins), { i: 7n, s: '<mid>' });
    t.deepEqual(binsOf((await ns.execute(get('o'))).bins), { i: 7n, f: 1.75, s: '<mid>', b: '0203', new: 7n });
    t.is((await ns.execute(op('o', [{ op: OpType.INCR, bin: 's', value: int(1) }]))).resultCode, ResultCode.INCOMPATIBLE_TYPE);
    t.is((await ns.execute(op('o', [{ op: OpType.APPEND, bin: 'i', value: str('x') }]))).resultCode, ResultCode.INCOMPATIBLE_TYPE);
    t.is((await ns.execute(op('o', [{ op: OpType.CDT_MODIFY, bin: 'l', value: nul }]))).resultCode, ResultCode.UNSUPPORTED_FEATURE);
    t.is((await ns.execute(put('o', { 'sixteen-bytes-xx': int(1) }))).resultCode, ResultCode.BIN_NAME);
    const before = (await ns.execute(get('o'))).generation;
    t.is((await ns.execute(op('o', [{ op: OpType.TOUCH, bin: '', value: nul }]))).resultCode, ResultCode.OK);
    t.is((await ns.execute(get('o'))).generation, before + 1, 'touch bumps the generation');
    t.is((await ns.execute(op('missing', [{ op: OpType.TOUCH, bin: '', value: nul }]))).resultCode, ResultCode.NOT_FOUND);
  });

  test(`${engine}: deletes are tombstones that carry generation forward`, async (t) => {
    const ns = await withNs(t, { 'storage-engine': engine });
    await ns.execute(put('d', { a: int(1) }));
    await ns.execute(put('d', { a: int(2) }));
    const del = await ns.execute(remove('d'));
    t.is(del.resultCode, ResultCode.OK);
    t.is((await ns.execute(get('d'))).resultCode, ResultCode.NOT_FOUND);
    t.is((await ns.execute(remove('d'))).resultCode, ResultCode.NOT_FOUND);
    const v = ns.readVersion(computeDigest('demo', 'd'));
    t.truthy(v?.tombstone);
    t.is(v?.generation, 3);
    const again = await ns.execute(put('d', { a: int(3) }));
    t.is(again.generation, 4, 'a recreated record outranks its tombstone');
    // The record's own partition log holds every change in order, the delete included.
    const digest = computeDigest('demo', 'd');
    const log = ns.writeLog.read(partitionOf(digest), 1n, 100).filter((e) => e.digest.equals(digest));
    t.deepEqual(log.map((e) => [e.generation, e.kind]), [[1, WriteKind.WRITE], [2, WriteKind.WRITE], [3, WriteKind.DELETE], [4, WriteKind.WRITE]]);
  });
}

test('TTL encodings, expiry on read, background expiration', async (t) => {
  let now = Date.now();
  const clock: Clock = { nowMs: () => now };
  const ns = await withNs(t, { 'default-ttl': 100 }, clock);
  const nowVoid = () => Math.floor(now / 1000) - CITRUSLEAF_EPOCH_S;
  let r = await ns.execute(put('t0', { a: int(1) }, { ttlS: Ttl.NAMESPACE_DEFAULT }));
  t.is(r.voidTimeS, nowVoid() + 100);
  r = await ns.execute(put('t1', { a: int(1) }, { ttlS: Ttl.NEVER_EXPIRE }));
  t.is(r.voidTimeS, 0);
  r = await ns.execute(put('t2', { a: int(1) }, { ttlS: 10 }));
  const v2 = r.voidTimeS;
  t.is(v2, nowVoid() + 10);
  r = await ns.execute(put('t2', { b: int(1) }, { ttlS: Ttl.DONT_UPDATE }));
  t.is(r.voidTimeS, v2, '-2 leaves the void time unchanged');
  t.is((await ns.execute(put('bad', { a: int(1) }, { ttlS: 400_000_000 }))).resultCode, ResultCode.PARAMETER);
  now += 11_000;
  t.is((await ns.execute(get('t2'))).resultCode, ResultCode.NOT_FOUND, 'an expired record is never returned');
  t.is(ns.expireAll(), 1);
  t.truthy(ns.readVersion(computeDigest('demo', 't2'))?.tombstone, 'expiry leaves a durable tombstone');
  t.is((await ns.execute(get('t0'))).resultCode, ResultCode.OK);
});

test('hot key: commands queued past transaction-pending-limit answer KEY_BUSY', async (t) => {
  const ns = await withNs(t, { 'commit-to-device': true, 'transaction-pending-limit': 5 });
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => ns.execute(put('hot', { n: int(i) }))));
  const codes = results.map((r) => r.resultCode);
  t.true(codes.includes(ResultCode.KEY_BUSY));
  t.true(codes.includes(ResultCode.OK));
  t.is(codes.filter((c) => c !== ResultCode.OK && c !== ResultCode.KEY_BUSY).length, 0);
  const okCount = codes.filter((c) => c === ResultCode.OK).length;
  t.is((await ns.execute(get('hot'))).generation, okCount);
});

test('stop-writes refuses writes with OUT_OF_SPACE and keeps serving reads; set limits; record size', async (t) => {
  const ns = await withNs(t, { 'storage-engine': 'memory', 'memory-size': 4 * 1024 * 1024, 'write-block-size': 65536, 'stop-writes-pct': 30, 'nsup-period': 1 });
  t.is((await ns.execute(put('huge', { b: blob(Buffer.alloc(70_000)) }))).resultCode, ResultCode.RECORD_TOO_BIG);
  t.is((await ns.applyReplicated({ namespace: 'test', set: 'demo', digest: computeDigest('demo', 'old'), generation: 1, lutMs: 5, voidTimeS: 0, tombstone: false, bins: [] }, 'generation')).resultCode, ResultCode.PARAMETER);
  const big = blob(Buffer.alloc(30_000, 1));
  let stopped = 0;
  for (let i = 0; i < 200 && stopped === 0; i++) {
    const r = await ns.execute(put(`big${i}`, { b: big }));
    if (r.resultCode === ResultCode.OUT_OF_SPACE) stopped = i;
    else t.is(r.resultCode, ResultCode.OK);
    ns.stats(); // refreshes the space flags, as the background tick does
  }
  t.true(stopped > 0, 'writes stop before the memory is exhausted');
  t.is((await ns.execute(get('big0'))).resultCode, ResultCode.OK, 'reads are still served');
});

test('replicated writes: the winner is the same whatever the delivery order', async (t) => {
  const ns = await withNs(t, { 'storage-engine': 'memory' });
  const digest = computeDigest('demo', 'r');
  const mk = (generation: number, lutMs: number, v: string, tombstone = false) => ({
    namespace: 'test', set: 'demo', digest, generation, lutMs, voidTimeS: 0, tombstone,
    bins: tombstone ? [] : [{ name: 'v', ...str(v) }],
  });
  const T = 1_790_000_000_000;
  const versions = [mk(3, T + 1000, 'a'), mk(5, T + 900, 'b'), mk(5, T + 900, 'c'), mk(4, T + 2000, 'd'), mk(6, T + 800, '', true)];
  const r = testRandom(t);
  for (let round = 0; round < 20; round++) {
    const order = shuffled(r, versions);
    const { dir, cleanup } = tempDir();
    const dst = await openNamespace(nsConfig(dir, { 'storage-engine': 'memory' }));
    for (const v of [...order, ...order]) await dst.applyReplicated(v, 'generation');
    const got = dst.readVersion(digest);
    t.is(got?.generation, 6);
    t.true(got?.tombstone);
    await dst.close();
    cleanup();
  }
  // Last-update-time policy picks the highest LUT.
  for (const v of versions) await ns.applyReplicated(v, 'last-update-time');
  t.deepEqual(binsOf(ns.readVersion(digest)!.bins), { v: 'd' });
  const again = await ns.applyReplicated(versions[3]!, 'last-update-time');
  t.is(again.resultCode, ResultCode.LOST_CONFLICT, 're-delivery of the winner is a no-op');
  ns.setFenced(true);
  t.is((await ns.execute(put('x', { a: int(1) }))).resultCode, ResultCode.FORBIDDEN, 'a fenced namespace refuses client writes');
  t.is((await ns.applyReplicated(mk(9, T + 5000, 'z'), 'generation')).resultCode, ResultCode.OK, 'but applies replicated ones');
});

test('write log records every change in order and its tail reader wakes up', async (t) => {
  const ns = await withNs(t);
  const d = computeDigest('demo', 'w');
  const pid = (d[0]! | (d[1]! << 8)) & 0xfff;
  const from = ns.writeLog.nextSequence(pid as PartitionId);
  const waiting = ns.writeLog.waitForEntries([pid as PartitionId], () => from, 5000);
  await ns.execute(put('w', { a: int(1) }));
  await waiting;
  await ns.execute(put('w', { a: int(2) }));
  await ns.execute(remove('w'));
  const entries = ns.writeLog.read(pid as PartitionId, from, 10);
  t.deepEqual(entries.map((e) => [e.generation, e.kind]), [[1, 1], [2, 1], [3, 2]]);
  t.deepEqual(entries.map((e) => e.sequence), [from, from + 1n, from + 2n]);
});

test('truncate removes a set durably', async (t) => {
  const ns = await withNs(t);
  for (let i = 0; i < 50; i++) await ns.execute(put(`tr${i}`, { a: int(i) }));
  t.is(await ns.truncate('demo'), 50);
  t.is((await ns.execute(get('tr1'))).resultCode, ResultCode.NOT_FOUND);
  t.is(ns.sets().find((s) => s.name === 'demo')?.objects, 0);
});
