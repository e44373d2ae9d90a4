/**
 * A record that arrives in device format (a replica write) is checked without decoding it
 * (recordLayoutOk) and stored by copying its bytes (RecordStore.writeEncoded): what the store
 * reads back is the record that was encoded, and the index holds its version.
 */
import test from 'ava';
import { crc32 } from 'node:zlib';
import { openRecordStore } from '../../store/storage/record-store.js';
import { checkRecord, decodeRecord, encodeRecord, readHeader, recordLayoutOk, type StoredRecord } from '../../store/storage/record-format.js';
import { emptyEntry } from '../../store/storage/primary-index.js';
import { computeDigest } from '../../store/digest.js';
import { RecordOrigin } from '../../store/types.js';
import { str } from '../helpers/store.js';

const record = (key: string, extra: Partial<StoredRecord> = {}): StoredRecord => ({
  digest: computeDigest('demo', key),
  setName: 'demo',
  generation: 7,
  lutMs: 1_790_000_000_123,
  voidTimeS: 4321,
  tombstone: false,
  bins: [
    { name: 'a', ...str('first') },
    { name: 'bb', ...str('x'.repeat(100)) },
  ],
  ...extra,
});

const shapes: Array<[string, StoredRecord]> = [
  ['bins', record('k1')],
  ['a user key', record('k2', { key: str('k2') })],
  ['no bins', record('k3', { bins: [] })],
  ['a tombstone', record('k4', { tombstone: true, bins: [], origin: RecordOrigin.REPLICATED })],
];

for (const [what, r] of shapes) {
  test(`recordLayoutOk accepts an encoded record with ${what}`, (t) => {
    const b = encodeRecord(r, 0);
    t.is(checkRecord(b, 0), 'ok');
    t.true(recordLayoutOk(b, 0));
  });
}

test('recordLayoutOk refuses a body that overruns or falls short of its length, even under a valid CRC', (t) => {
  const b = encodeRecord(record('k5'), 0);
  const length = b.readUInt32LE(4);
  // The second bin's value length (u32 after its name and type), one byte too long / too short.
  const lenAt = length - 100 - 4;
  t.is(b.readUInt32LE(lenAt), 100);
  for (const wrong of [101, 99, 0xffffffff]) {
    const d = Buffer.from(b);
    d.writeUInt32LE(wrong, lenAt);
    d.writeUInt32LE(crc32(d.subarray(12, length)), 8);
    t.is(checkRecord(d, 0), 'ok', 'the CRC matches the damaged body');
    t.false(recordLayoutOk(d, 0), `value length ${wrong}`);
  }
  const fewer = Buffer.from(b);
  fewer.writeUInt16LE(1, 14);
  fewer.writeUInt32LE(crc32(fewer.subarray(12, length)), 8);
  t.false(recordLayoutOk(fewer, 0), 'a bin count that leaves bytes over');
});

test('writeEncoded stores the bytes as they came: read back equal, indexed with its version, set counts kept', async (t) => {
  const { store } = await openRecordStore({ name: 't', files: [], fileBytes: 0, memoryBytes: 4 * 1024 * 1024, blockBytes: 64 * 1024, flushMaxMs: 1000, defragLwmPct: 50, defragSleepMs: 10, readCacheBlocks: 4 });
  t.teardown(() => store.close());
  for (const [, r] of shapes) {
    // Inside a larger buffer, as in a fabric frame, sealed with another block sequence.
    const enc = encodeRecord(r, 99);
    const frame = Buffer.concat([Buffer.from('head'), enc]);
    store.writeEncoded(frame, 4, readHeader(frame, 4));
    frame.fill(0xee); // the store kept a copy, not a view
    const back = store.read(r.digest);
    t.deepEqual(back, decodeRecord(encodeRecord(r, 0), 0));
    const e = emptyEntry();
    t.true(store.lookup(r.digest, e));
    t.is(e.generation, r.generation);
    t.is(e.lutMs, r.lutMs);
    t.is(e.voidTimeS, r.voidTimeS);
    t.is(e.tombstone, r.tombstone);
    t.is(e.hasKey, r.key !== undefined);
  }
  const id = store.setId('demo');
  t.deepEqual(store.setCounts(id), { objects: 3, tombstones: 1 });
  // A newer version of one of them replaces it (counts move, not add).
  const newer = record('k1', { generation: 8 });
  const enc = encodeRecord(newer, 0);
  store.writeEncoded(enc, 0, readHeader(enc, 0));
  t.is(store.read(newer.digest)?.generation, 8);
  t.deepEqual(store.setCounts(id), { objects: 3, tombstones: 1 });
});

test('write returns the record as the store sealed it: valid bytes that decode to the record and store as they are elsewhere', async (t) => {
  const opts = { name: 't', files: [], fileBytes: 0, memoryBytes: 4 * 1024 * 1024, blockBytes: 64 * 1024, flushMaxMs: 1000, defragLwmPct: 50, defragSleepMs: 10, readCacheBlocks: 4 };
  const { store } = await openRecordStore(opts);
  const { store: other } = await openRecordStore(opts);
  t.teardown(async () => {
    await store.close();
    await other.close();
  });
  for (const [, r] of shapes) {
    const bytes = Buffer.from(store.write(r));
    t.is(bytes.length % 16, 0, 'padded');
    t.is(checkRecord(bytes, 0), 'ok');
    t.true(recordLayoutOk(bytes, 0));
    t.deepEqual(decodeRecord(bytes, 0), store.read(r.digest));
    other.writeEncoded(bytes, 0, readHeader(bytes, 0));
    t.deepEqual(other.read(r.digest), store.read(r.digest));
  }
});
