import test from 'ava';
import { randomBytes } from 'node:crypto';
import { PrimaryIndex, emptyEntry, type IndexEntry } from '../../store/storage/primary-index.js';
import { PARTITION_COUNT, type PartitionId } from '../../store/types.js';
import { randomBuffer, testRandom } from '../helpers/seed.js';

const entryFor = (i: number): IndexEntry => ({
  generation: (i * 7919) % 2 ** 32,
  lutMs: 1_700_000_000_000 + i,
  voidTimeS: i % 3 === 0 ? 0 : 500_000_000 + i,
  address: i * 3 + (i % 2) * 2 ** 39,
  setId: i % 4096,
  tombstone: i % 5 === 0,
  hasKey: i % 2 === 0,
});

test('put, get, replace and delete agree with a reference Map under random churn', (t) => {
  const ix = new PrimaryIndex();
  const ref = new Map<string, IndexEntry>();
  const digests: Buffer[] = [];
  const out = emptyEntry();
  const rnd = testRandom(t);
  for (let i = 0; i < 60_000; i++) {
    const r = rnd.float();
    if (r < 0.6 || digests.length === 0) {
      const d = randomBuffer(rnd, 20);
      digests.push(d);
      ix.put(d, entryFor(i));
      ref.set(d.toString('hex'), entryFor(i));
    } else if (r < 0.8) {
      const d = digests[rnd.int(digests.length)]!;
      ix.put(d, entryFor(i));
      ref.set(d.toString('hex'), entryFor(i));
    } else {
      const k = rnd.int(digests.length);
      const d = digests[k]!;
      digests[k] = digests[digests.length - 1]!;
      digests.pop();
      t.true(ix.delete(d));
      ref.delete(d.toString('hex'));
    }
  }
  t.is(ix.size, ref.size);
  for (const [hex, e] of ref) {
    t.true(ix.get(Buffer.from(hex, 'hex'), out), hex);
    t.deepEqual({ ...out }, e);
  }
  t.false(ix.get(randomBytes(20), out));
  let walked = 0;
  for (let p = 0; p < PARTITION_COUNT; p++) {
    ix.forEach(p as PartitionId, (d, e) => {
      walked++;
      t.deepEqual({ ...e }, ref.get(d.toString('hex')));
    });
  }
  t.is(walked, ref.size);
});

test('snapshot round trip restores every entry', (t) => {
  const ix = new PrimaryIndex();
  const ds = Array.from({ length: 20_000 }, () => randomBytes(20));
  ds.forEach((d, i) => ix.put(d, entryFor(i)));
  const snap = Buffer.concat([...ix.snapshotChunks()]);
  const back = PrimaryIndex.fromSnapshot(snap);
  t.is(back.size, ds.length);
  const out = emptyEntry();
  ds.forEach((d, i) => {
    t.true(back.get(d, out));
    t.deepEqual({ ...out }, entryFor(i));
  });
  back.put(randomBytes(20), entryFor(1));
  t.is(back.size, ds.length + 1);
  t.throws(() => PrimaryIndex.fromSnapshot(snap.subarray(0, snap.length - 4)), { message: /truncated|trailing|malformed/ });
});

test('index memory stays within 48 bytes per record at scale', (t) => {
  const ix = new PrimaryIndex();
  const n = 1_000_000;
  const d = Buffer.alloc(20);
  const e = entryFor(1);
  for (let i = 0; i < n; i++) {
    randomBytes(20).copy(d);
    ix.put(d, e);
  }
  const perRecord = ix.memoryBytes() / n;
  t.log(`index bytes/record at ${n}: ${perRecord.toFixed(1)}`);
  t.true(perRecord <= 48, `${perRecord}`);
});
