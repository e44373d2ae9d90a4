import test from 'ava';
import { openNamespace } from '../../store/node.js';
import { computeDigest, partitionOf } from '../../store/digest.js';
import { ResultCode, WriteKind, type Clock } from '../../store/types.js';
import { get, int, nsConfig, put, remove, str, tempDir } from '../helpers/store.js';

test('tombstones are reclaimed only once no older copy remains on the device, and never resurrect', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const cfg = nsConfig(dir, { 'write-block-size': 65536, 'defrag-lwm-pct': 60, 'tomb-raider-period': 0 });
  let ns = await openNamespace(cfg);
  await ns.execute(put('gone', { v: str('x'.repeat(500)) }));
  await ns.execute(remove('gone'));
  const later = Date.now() + 60_000;
  t.is(await ns.store.reclaimTombstones(later), 0, 'the old copy is still on the device: keep the tombstone');
  // Churn until the block holding the old copy is defragmented and freed.
  for (let round = 0; round < 6; round++) {
    for (let i = 0; i < 300; i++) await ns.execute(put(`c${i}`, { v: str(`${round}`.repeat(300)) }));
    await ns.store.defragNow();
  }
  t.is(await ns.store.reclaimTombstones(later), 1, 'no older copy left: the tombstone goes');
  t.falsy(ns.readVersion(computeDigest('demo', 'gone')));
  await Promise.all([ns.store.commit(), ns.writeLog.commit()]);
  await ns.store.abandon();
  await ns.writeLog.abandon();
  ns = await openNamespace(cfg);
  t.is(ns.openReport.mode, 'cold');
  t.is((await ns.execute(get('gone'))).resultCode, ResultCode.NOT_FOUND, 'a reclaimed delete does not come back on a cold restart');
  await ns.close();
});

test('eviction removes the soonest-expiring records first and never records without a TTL', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const ns = await openNamespace(nsConfig(dir, { 'storage-engine': 'memory', 'nsup-period': 0 }));
  t.teardown(() => ns.close());
  for (let i = 0; i < 100; i++) await ns.execute(put(`e${i}`, { n: int(i) }, { ttlS: 1000 + i * 10 }));
  for (let i = 0; i < 20; i++) await ns.execute(put(`forever${i}`, { n: int(i) }, { ttlS: -1 }));
  const n = ns.evict();
  t.is(n, 10);
  for (let i = 0; i < 100; i++) t.is((await ns.execute(get(`e${i}`))).resultCode, i < 10 ? ResultCode.NOT_FOUND : ResultCode.OK, `e${i}`);
  for (let i = 0; i < 20; i++) t.is((await ns.execute(get(`forever${i}`))).resultCode, ResultCode.OK);
  t.is(Number(ns.stats().evicted_objects), 10);
});

test('write logs survive clean and crash restarts with their sequences and kinds', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  let now = Date.now();
  const clock: Clock = { nowMs: () => now };
  const cfg = nsConfig(dir, { 'write-log-entries': 4096 });
  let ns = await openNamespace(cfg, clock);
  const d = computeDigest('demo', 'w');
  const pid = partitionOf(d);
  await ns.execute(put('w', { a: int(1) }));
  await ns.execute(put('w', { a: int(2) }));
  await ns.close();
  ns = await openNamespace(cfg, clock);
  await ns.execute(remove('w'));
  const all = () => ns.writeLog.read(pid, ns.writeLog.firstSequence(pid), 100).filter((e) => e.digest.equals(d)).map((e) => [Number(e.sequence), e.generation, e.kind]);
  t.deepEqual(all().map((e) => e.slice(1)), [[1, WriteKind.WRITE], [2, WriteKind.WRITE], [3, WriteKind.DELETE]]);
  await ns.writeLog.commit();
  await ns.store.abandon();
  await ns.writeLog.abandon();
  now += 1000;
  ns = await openNamespace(cfg, clock);
  t.deepEqual(all().map((e) => e.slice(1)), [[1, WriteKind.WRITE], [2, WriteKind.WRITE], [3, WriteKind.DELETE]], 'after a crash');
  const seqs = all().map((e) => e[0]!);
  t.deepEqual(seqs, [seqs[0]!, seqs[0]! + 1, seqs[0]! + 2], 'sequences are gap-free');
  // Bounded: the ring overwrites its oldest entries, and readers see where the log now starts.
  for (let i = 0; i < 5000; i++) await ns.execute(put(`fill${i}`, { a: int(i) }));
  t.is(ns.writeLog.read(pid, 1n, 10).filter((e) => e.digest.equals(d)).length, 0);
  t.true(ns.writeLog.firstSequence(pid) > 1n || ns.writeLog.read(pid, ns.writeLog.firstSequence(pid), 1).length === 0);
  await ns.close();
});
