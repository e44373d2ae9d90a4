/**
 * The expiry rule (docs/xdr.md): an expired record's tombstone keeps its generation and LUT, so
 * two sites whose clocks differ expire it into the same tombstone, and a later version of the
 * record that reaches a site after that site expired the older one still wins.
 */
import test from 'ava';
import { openNamespace } from '../../store/node.js';
import type { Namespace } from '../../store/namespace/namespace.js';
import { partitionChecksum } from '../../store/checksums.js';
import { partitionOf } from '../../store/digest.js';
import { computeDigest } from '../../store/digest.js';
import { ResultCode, RecordOrigin, type Clock, type ConflictPolicyId, type RecordVersion } from '../../store/types.js';
import { binsOf, int, nsConfig, put, tempDir } from '../helpers/store.js';

interface Site {
  ns: Namespace;
  clock: { now: number };
}

async function site(t: import('ava').ExecutionContext, startMs: number, engine: 'memory' | 'device' = 'memory'): Promise<Site> {
  const { dir, cleanup } = tempDir();
  const clock = { now: startMs };
  const c: Clock = { nowMs: () => clock.now };
  const ns = await openNamespace(nsConfig(dir, { 'storage-engine': engine }), c);
  t.teardown(async () => {
    await ns.close();
    cleanup();
  });
  return { ns, clock };
}

const T0 = 1_790_000_000_123;

for (const policy of ['generation', 'last-update-time'] as ConflictPolicyId[]) {
  test(`${policy}: sites with different clocks expire a record into the same tombstone`, async (t) => {
    const a = await site(t, T0, 'device');
    const b = await site(t, T0 + 37, 'memory');
    const digest = computeDigest('demo', 'e1');
    const w = await a.ns.execute(put('e1', { n: int(1) }, { ttlS: 3 }));
    t.is(w.resultCode, ResultCode.OK);
    const v = a.ns.readVersion(digest)!;
    t.is((await b.ns.applyReplicated(v, policy)).resultCode, ResultCode.OK);
    // Each site expires it on its own, at different moments of its own clock.
    a.clock.now += 4_000;
    b.clock.now += 9_512;
    t.is(a.ns.expireAll(), 1);
    t.is(b.ns.expireAll(), 1);
    const ta = a.ns.readVersion(digest)!;
    const tb = b.ns.readVersion(digest)!;
    t.true(ta.tombstone && tb.tombstone);
    t.deepEqual([ta.generation, ta.lutMs], [v.generation, v.lutMs], 'the tombstone keeps the generation and LUT');
    t.deepEqual([tb.generation, tb.lutMs], [ta.generation, ta.lutMs], 'both sites hold the same tombstone');
    t.is(ta.origin, RecordOrigin.EXPIRED);
    // A's shipped tombstone changes nothing at B; a late copy of the live version does not revive it.
    t.is((await b.ns.applyReplicated(ta, policy)).resultCode, ResultCode.LOST_CONFLICT);
    t.is((await b.ns.applyReplicated(v, policy)).resultCode, ResultCode.LOST_CONFLICT, 'an expired version never comes back');
    const pid = partitionOf(digest);
    t.deepEqual(partitionChecksum(a.ns.store, pid), partitionChecksum(b.ns.store, pid));
  });

  test(`${policy}: a newer version that arrives after the destination expired the older one wins`, async (t) => {
    const a = await site(t, T0, 'memory');
    const b = await site(t, T0 - 250, 'memory');
    const digest = computeDigest('demo', 'e2');
    // W: a short TTL; X: the next write, 10 ms later, without TTL.
    await a.ns.execute(put('e2', { n: int(1) }, { ttlS: 3 }));
    const w = a.ns.readVersion(digest)!;
    a.clock.now += 10;
    await a.ns.execute(put('e2', { n: int(2) }, { ttlS: -1 }));
    const x = a.ns.readVersion(digest)!;
    // B gets W only after its void time (a receiver restart with a backlog), expires it, then X.
    b.clock.now += 60_000;
    t.is((await b.ns.applyReplicated(w, policy)).resultCode, ResultCode.OK);
    t.is(b.ns.expireAll(), 1);
    t.is((await b.ns.applyReplicated(x, policy)).resultCode, ResultCode.OK, 'the newer version beats the expiry tombstone');
    const got = b.ns.readVersion(digest)!;
    t.false(got.tombstone);
    t.deepEqual(binsOf(got.bins), { n: 2n });
    t.deepEqual([got.generation, got.lutMs], [x.generation, x.lutMs]);
  });
}

test('a write on an expired record outranks the tombstone its expiry leaves elsewhere', async (t) => {
  const a = await site(t, T0, 'memory');
  const b = await site(t, T0 + 5, 'memory');
  const digest = computeDigest('demo', 'e3');
  await a.ns.execute(put('e3', { n: int(1) }, { ttlS: 2 }));
  const w = a.ns.readVersion(digest)!;
  await b.ns.applyReplicated(w, 'generation');
  a.clock.now += 5_000;
  b.clock.now += 5_000;
  t.is(b.ns.expireAll(), 1);
  // A recreates the key before its own expiry pass reached it.
  t.is((await a.ns.execute(put('e3', { n: int(7) }))).resultCode, ResultCode.OK);
  const x: RecordVersion = a.ns.readVersion(digest)!;
  t.true(x.generation > w.generation && x.lutMs > w.lutMs, 'beats the expiry tombstone (same generation and LUT as W) under both policies');
  t.is((await b.ns.applyReplicated(x, 'generation')).resultCode, ResultCode.OK);
  t.deepEqual(binsOf(b.ns.readVersion(digest)!.bins), { n: 7n });
});

test('verify counts an expired record its expiry pass has not reached yet as that tombstone', async (t) => {
  const a = await site(t, T0, 'memory');
  const b = await site(t, T0, 'memory');
  const digest = computeDigest('demo', 'e4');
  await a.ns.execute(put('e4', { n: int(1) }, { ttlS: 2 }));
  await b.ns.applyReplicated(a.ns.readVersion(digest)!, 'generation');
  a.clock.now += 5_000;
  b.clock.now += 5_000;
  a.ns.expireAll();
  const pid = partitionOf(digest);
  t.notDeepEqual(partitionChecksum(a.ns.store, pid), partitionChecksum(b.ns.store, pid), 'raw index entries differ');
  t.deepEqual(partitionChecksum(a.ns.store, pid, undefined, a.ns.currentVoidS()), partitionChecksum(b.ns.store, pid, undefined, b.ns.currentVoidS()));
});
