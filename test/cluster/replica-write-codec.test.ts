/**
 * REPLICA_WRITE frames (store/cluster/replica-write.ts): built in one buffer, judged on arrival
 * (a damaged record is refused), and applied on the replica as they came, in version order: a
 * late or repeated frame never regresses the record.
 */
import test from 'ava';
import { ACKS_PER_FRAME_MAX, decodeAcks, encodeAcks, encodeWriteFrame, decodeWrite } from '../../store/cluster/replica-write.js';
import { FabricKind } from '../../store/cluster/heartbeat.js';
import { openNamespace } from '../../store/node.js';
import { computeDigest } from '../../store/digest.js';
import { decodeRecord, encodeRecord, type StoredRecord } from '../../store/storage/record-format.js';
import { WriteKind } from '../../store/types.js';
import { nsConfig, str, tempDir } from '../helpers/store.js';

const T = 1_790_000_000_000;
const SENDER = Buffer.from('BB9020011AC4202');
const rec = (generation: number, lutMs = T + generation, value = `v${generation}`): StoredRecord => ({
  digest: computeDigest('demo', 'k'),
  setName: 'demo',
  generation,
  lutMs,
  voidTimeS: 0,
  tombstone: false,
  key: str('k'),
  bins: [{ name: 'v', ...str(value) }],
});

test('a REPLICA_WRITE frame round-trips: id, namespace, sender, kind, migration flag and the record bytes', (t) => {
  const r = rec(3);
  for (const [flags, migration] of [[0, false], [0x80, true]] as const) {
    const f = encodeWriteFrame(0xfedcba98, 'test', SENDER, { record: r, kind: WriteKind.WRITE }, flags);
    t.is(f[0], FabricKind.REPLICA_WRITE);
    const m = decodeWrite(f.subarray(1));
    if (!m) return t.fail('refused an intact frame');
    t.is(m.id, 0xfedcba98);
    t.is(m.namespace, 'test');
    t.is(m.sender, SENDER.toString());
    t.is(m.kind, WriteKind.WRITE);
    t.is(m.migration, migration);
    t.deepEqual(decodeRecord(m.version.bytes, m.version.off), decodeRecord(encodeRecord(r, 0), 0));
    t.deepEqual(m.version.digest, r.digest);
    t.is(m.version.header.generation, 3);
  }
});

test('a REPLICA_WRITE built from the bytes the store wrote carries them as they are, and refuses bytes of another record', (t) => {
  const r = rec(3);
  const stored = encodeRecord(r, 77); // sealed with the master's block sequence, as its write block holds it
  const f = encodeWriteFrame(9, 'test', SENDER, { record: r, kind: WriteKind.WRITE, encoded: stored });
  const m = decodeWrite(f.subarray(1));
  if (!m) return t.fail('refused an intact frame');
  t.deepEqual(m.version.bytes.subarray(m.version.off), stored);
  t.deepEqual(decodeRecord(m.version.bytes, m.version.off), decodeRecord(encodeRecord(r, 0), 0));
  const other = encodeRecord({ ...r, digest: computeDigest('demo', 'other') }, 77);
  t.throws(() => encodeWriteFrame(9, 'test', SENDER, { record: r, kind: WriteKind.WRITE, encoded: other }));
});

test('a REPLICA_ACK carries its sender and every (id, result code) given, in order; a malformed one is refused', (t) => {
  const f = encodeAcks(SENDER, [1, 0, 0xffffffff, 14, 77, 4]);
  t.is(f[0], FabricKind.REPLICA_ACK);
  const p = f.subarray(1);
  const m = decodeAcks(p);
  if (!m) return t.fail('refused an intact REPLICA_ACK');
  t.is(m.sender, SENDER.toString());
  const got: Array<[number, number]> = [];
  for (let at = m.at; at < p.length; at += 5) got.push([p.readUInt32BE(at), p[at + 4]!]);
  t.deepEqual(got, [[1, 0], [0xffffffff, 14], [77, 4]]);
  t.is(decodeAcks(p.subarray(0, p.length - 1)), undefined, 'cut inside an acknowledgement');
  t.is(decodeAcks(p.subarray(0, 1 + SENDER.length)), undefined, 'no acknowledgement');
  t.is(decodeAcks(Buffer.alloc(0)), undefined);
  t.throws(() => encodeAcks(SENDER, []));
  t.throws(() => encodeAcks(SENDER, new Array<number>(2 * (ACKS_PER_FRAME_MAX + 1)).fill(0)));
});

test('a REPLICA_WRITE with any byte of its record flipped, or cut short, is refused', (t) => {
  const f = encodeWriteFrame(1, 'test', SENDER, { record: rec(3), kind: WriteKind.WRITE }).subarray(1);
  const at = 6 + 4 + 1 + SENDER.length;
  const length = f.readUInt32LE(at + 4);
  for (let i = at; i < at + length; i++) {
    if (i >= at + 16 && i < at + 24) continue; // the block sequence: not covered, the replica reseals it
    const d = Buffer.from(f);
    d[i] = d[i]! ^ 0x01;
    t.is(decodeWrite(d), undefined, `byte ${i - at} of the record`);
  }
  t.is(decodeWrite(f.subarray(0, f.length - 17)), undefined);
  t.is(decodeWrite(f.subarray(0, 5)), undefined);
});

test('a replica applies frames in version order only: late, repeated and tied-but-losing ones change nothing', async (t) => {
  const { dir, cleanup } = tempDir();
  const ns = await openNamespace(nsConfig(dir));
  t.teardown(async () => {
    await ns.close();
    cleanup();
  });
  const apply = async (r: StoredRecord) => {
    const m = decodeWrite(encodeWriteFrame(1, 'test', SENDER, { record: r, kind: WriteKind.WRITE }).subarray(1));
    if (!m) throw new Error('refused');
    return (await ns.applyReplica(m.version, m.kind)).applied;
  };
  t.true(await apply(rec(5)));
  t.false(await apply(rec(5)), 'a repeat');
  t.false(await apply(rec(4)), 'a late, older generation');
  t.false(await apply(rec(5, T + 1)), 'same generation, older LUT');
  t.is(ns.readVersion(rec(5).digest)?.generation, 5);
  t.true(await apply(rec(5, T + 9)), 'same generation, newer LUT');
  // An exact (generation, LUT) tie is broken by the bodies, the same way on every node.
  const a = rec(6, T + 20, 'a');
  const b = rec(6, T + 20, 'b');
  t.true(await apply(a));
  t.true(await apply(b), '"b" wins the tie');
  t.false(await apply(a), 'and "a" does not come back');
  t.deepEqual(ns.readVersion(a.digest)?.bins, b.bins);
  t.deepEqual(ns.readVersion(a.digest)?.key, str('k'));
});
