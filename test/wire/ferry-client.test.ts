/**
 * ferry's own client (store/client) against a real node process: the same scenarios as the
 * official-client test, plus replicated writes (field 250) and cross-checks with the official client.
 */
import test from 'ava';
import { createRequire } from 'node:module';
import { startNode, type NodeProcess } from './node-process.js';
import { FerryClient, ops, type ScannedRecord } from '../../store/client/client.js';
import { GeoJSON, RawValue, toWireValue } from '../../store/client/values.js';
import { AerospikeError } from '../../store/wire/errors.js';
import { computeDigest, partitionOf } from '../../store/digest.js';
import { ExistsPolicy, GenerationPolicy, ParticleType, ResultCode, CITRUSLEAF_EPOCH_S } from '../../store/types.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');

let node: NodeProcess;
let client: FerryClient;
let ns = 'test';
const k = (key: string | number, set = 'fc') => ({ namespace: ns, set, key });

async function codeOf(p: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof AerospikeError) return err.code;
    throw err;
  }
}

const connect = (): Promise<FerryClient> => FerryClient.connect({ hosts: [{ host: node.host, port: node.port }], timeoutMs: 5000, tendIntervalMs: 500 });

test.before(async () => {
  node = await startNode({ extraArgs: ['--commit-to-device'] });
  client = await connect();
  const namespaces = (await client.infoValue('namespaces')).split(';');
  ns = namespaces.includes('test') ? 'test' : namespaces[0]!;
});

test.after.always(async () => {
  client?.close();
  await node?.destroy();
});

test.serial('connect and info', async (t) => {
  t.is(client.nodeIds().length, 1);
  const info = await client.info(['build', 'partition-generation', 'statistics']);
  t.is(info.get('build'), '8.1.1.0');
  t.is(info.get('partition-generation'), '1');
  t.regex(info.get('statistics')!, /cluster_size=1/);
  t.is(await codeOf(client.infoValue('bogus')), ResultCode.PARAMETER);
});

test.serial('CRUD across every value type', async (t) => {
  const bins = {
    i: 42,
    big: 2n ** 62n,
    f: 1.25,
    s: 'héllo',
    b: Buffer.from([0, 255]),
    t: false,
    l: [1, 'a', [2.5, null]],
    m: { a: 1, n: { b: Buffer.from([7]) } },
    g: new GeoJSON('{"type":"Point","coordinates":[1,2]}'),
    j: new RawValue(ParticleType.JAVA_BLOB, Buffer.from('javaobj')),
  };
  const w = await client.put(k('types'), bins);
  t.is(w.generation, 1);
  const r = await client.get(k('types'));
  t.truthy(r);
  t.is(r!.bins['i'], 42);
  t.is(r!.bins['big'], 2n ** 62n);
  t.is(r!.bins['f'], 1.25);
  t.is(r!.bins['s'], 'héllo');
  t.deepEqual(r!.bins['b'], Buffer.from([0, 255]));
  t.is(r!.bins['t'], false);
  t.deepEqual(r!.bins['l'], [1, 'a', [2.5, null]]);
  t.deepEqual(r!.bins['m'], { a: 1, n: { b: Buffer.from([7]) } });
  t.true(r!.bins['g'] instanceof GeoJSON);
  t.is((r!.bins['g'] as GeoJSON).text, '{"type":"Point","coordinates":[1,2]}');
  t.true(r!.bins['j'] instanceof RawValue);
  t.is((r!.bins['j'] as RawValue).type, ParticleType.JAVA_BLOB);
  t.is(r!.ttl, -1);
  const sel = await client.get(k('types'), ['i', 'nope']);
  t.deepEqual(sel!.bins, { i: 42 });
  t.true(await client.exists(k('types')));
  t.is(await client.get(k('missing')), null);
  t.false(await client.exists(k('missing')));
  t.true(await client.remove(k('types')));
  t.false(await client.remove(k('types')));
  t.is(await client.get(k('types')), null);
});

test.serial('records written by the official client read back identically, and the other way', async (t) => {
  const off = await Aerospike.connect({ hosts: [{ addr: node.host, port: node.port }], log: { level: Aerospike.log.OFF } });
  try {
    await off.put(new Aerospike.Key(ns, 'fc', 'from-official'), { i: 1, s: 'x', l: [1, 2], m: { a: 'b' }, g: new Aerospike.GeoJSON({ type: 'Point', coordinates: [3, 4] }) });
    const r = await client.get(k('from-official'));
    t.deepEqual({ ...r!.bins, g: (r!.bins['g'] as GeoJSON).toJSON() }, { i: 1, s: 'x', l: [1, 2], m: { a: 'b' }, g: { type: 'Point', coordinates: [3, 4] } });
    await client.put(k('from-ferry'), { i: 2, l: ['a', { b: 1 }], m: { z: [true] }, f: 0.5 });
    const o = await off.get(new Aerospike.Key(ns, 'fc', 'from-ferry'));
    t.deepEqual(o.bins, { i: 2, l: ['a', { b: 1 }], m: { z: [true] }, f: 0.5 });
  } finally {
    await off.close();
  }
});

test.serial('policies, generation, TTL and error codes', async (t) => {
  await client.put(k('p'), { a: 1 });
  t.is(await codeOf(client.put(k('p'), { a: 2 }, { exists: ExistsPolicy.CREATE_ONLY })), ResultCode.RECORD_EXISTS);
  t.is(await codeOf(client.put(k('p-missing'), { a: 2 }, { exists: ExistsPolicy.UPDATE_ONLY })), ResultCode.NOT_FOUND);
  await client.put(k('p'), { b: 2 }, { exists: ExistsPolicy.REPLACE });
  t.deepEqual((await client.get(k('p')))!.bins, { b: 2 });
  const gen = (await client.get(k('p')))!.generation;
  t.is(await codeOf(client.put(k('p'), { b: 3 }, { generationPolicy: GenerationPolicy.EXPECT_EQUAL, generation: gen + 1 })), ResultCode.GENERATION);
  t.is(await codeOf(client.put(k('p'), { b: 3 }, { generationPolicy: GenerationPolicy.EXPECT_EQUAL, generation: gen })), 'ok');
  t.is(await codeOf(client.put(k('p'), { b: 3 }, { ttl: 400_000_000 })), ResultCode.PARAMETER);
  await client.put(k('ttl'), { a: 1 }, { ttl: 100 });
  const r = await client.get(k('ttl'));
  t.true(r!.ttl > 90 && r!.ttl <= 100);
  t.is(r!.voidTimeS + CITRUSLEAF_EPOCH_S - Math.floor(Date.now() / 1000) <= 100, true);
  await client.put(k('ttl-short'), { a: 1 }, { ttl: 1 });
  await new Promise((res) => setTimeout(res, 2500));
  t.is(await client.get(k('ttl-short')), null);
});

test.serial('operate with scalar ops', async (t) => {
  await client.put(k('op'), { n: 1, s: 'b' });
  const r = await client.operate(k('op'), [ops.incr('n', 2), ops.append('s', 'c'), ops.prepend('s', 'a'), ops.read('n'), ops.read('s')]);
  t.deepEqual(r.bins, { n: 3, s: 'abc' });
  t.is(await codeOf(client.operate(k('op'), [ops.incr('s', 1)])), ResultCode.INCOMPATIBLE_TYPE);
  const touched = await client.operate(k('op'), [ops.touch()], { ttl: 50 });
  t.true(touched.ttl > 40 && touched.ttl <= 50);
  await client.operate(k('op'), [ops.delete()]);
  t.false(await client.exists(k('op')));
  t.is(await codeOf(client.operate(k('op'), [ops.touch()])), ResultCode.NOT_FOUND);
  t.is(await codeOf(client.operate(k('op'), [{ op: 4, bin: 'l', value: { type: ParticleType.BLOB, bytes: Buffer.from('920105', 'hex') } }])), ResultCode.UNSUPPORTED_FEATURE);
});

test.serial('send-key: stored key comes back on scans', async (t) => {
  await client.put(k('sk', 'fc-keys'), { v: 1 }, { sendKey: true });
  await client.put(k(77, 'fc-keys'), { v: 2 }, { sendKey: true });
  const seen: ScannedRecord[] = [];
  for await (const r of client.scan(ns, { set: 'fc-keys' })) seen.push(r);
  t.deepEqual(seen.map((r) => r.key).sort(), [77, 'sk'].sort());
  t.true(seen.every((r) => r.set === 'fc-keys' && r.digest.length === 20));
});

test.serial('batch: reads, exists, selected bins, writes, removes, operates', async (t) => {
  for (let i = 0; i < 5; i++) await client.put(k(`b${i}`), { i, s: `v${i}` });
  const res = await client.batch([
    { kind: 'read', key: k('b0') },
    { kind: 'read', key: k('b1'), bins: ['s'] },
    { kind: 'read', key: k('b2'), headerOnly: true },
    { kind: 'read', key: k('nope') },
    { kind: 'write', key: k('bw'), bins: { a: 1 } },
    { kind: 'remove', key: k('b3') },
    { kind: 'operate', key: k('b4'), ops: [ops.incr('i', 10), ops.read('i')] },
    { kind: 'remove', key: k('nope') },
  ]);
  t.deepEqual(res.map((r) => r.resultCode), [0, 0, 0, 2, 0, 0, 0, 2]);
  t.deepEqual(res[0]!.record!.bins, { i: 0, s: 'v0' });
  t.deepEqual(res[1]!.record!.bins, { s: 'v1' });
  t.deepEqual(res[2]!.record!.bins, {});
  t.is(res[2]!.record!.generation, 1);
  t.deepEqual(res[6]!.record!.bins, { i: 14 });
  t.deepEqual((await client.get(k('bw')))!.bins, { a: 1 });
  t.false(await client.exists(k('b3')));
});

test.serial('scan: all partitions, a partition list, bins, max records, throttled', async (t) => {
  const keys = Array.from({ length: 120 }, (_, i) => i);
  for (const i of keys) await client.put(k(i, 'fc-scan'), { i, pad: 'x'.repeat(20) });
  const all: ScannedRecord[] = [];
  for await (const r of client.scan(ns, { set: 'fc-scan' })) all.push(r);
  t.deepEqual(all.map((r) => r.bins['i'] as number).sort((a, b) => a - b), keys);
  const pids = [...new Set(keys.slice(0, 10).map((i) => partitionOf(computeDigest('fc-scan', i))))];
  const some: ScannedRecord[] = [];
  for await (const r of client.scan(ns, { set: 'fc-scan', partitions: pids, bins: ['i'] })) some.push(r);
  const expected = keys.filter((i) => pids.includes(partitionOf(computeDigest('fc-scan', i))));
  t.deepEqual(some.map((r) => r.bins['i'] as number).sort((a, b) => a - b), expected);
  t.true(some.every((r) => Object.keys(r.bins).join() === 'i'));
  const limited: ScannedRecord[] = [];
  for await (const r of client.scan(ns, { set: 'fc-scan', maxRecords: 25 })) limited.push(r);
  t.is(limited.length, 25);
  const headers: ScannedRecord[] = [];
  for await (const r of client.scan(ns, { set: 'fc-scan', headerOnly: true, recordsPerSecond: 2000 })) headers.push(r);
  t.is(headers.length, 120);
  t.true(headers.every((r) => Object.keys(r.bins).length === 0 && r.generation === 1));
  await t.throwsAsync(
    async () => {
      for await (const _ of client.scan('no-such-ns')) void _;
    },
    { instanceOf: AerospikeError },
  );
});

test.serial('replicated writes (field 250): winner applies, loser answers LOST_CONFLICT', async (t) => {
  const digest = computeDigest('fc-repl', 'r1');
  const base = { namespace: ns, set: 'fc-repl', digest, lutMs: Date.now() - 1000, voidTimeS: 0, tombstone: false, key: { type: ParticleType.STRING, bytes: Buffer.from('r1') } } as const;
  const v5 = { ...base, generation: 5, bins: [{ name: 'a', ...toWireValue('five') }] };
  const a = await client.applyReplicated(v5, 'generation');
  t.is(a.resultCode, ResultCode.OK);
  t.is(a.generation, 5);
  t.deepEqual((await client.get(k('r1', 'fc-repl')))!.bins, { a: 'five' });
  const older = await client.applyReplicated({ ...base, generation: 3, bins: [{ name: 'a', ...toWireValue('three') }] }, 'generation');
  t.is(older.resultCode, ResultCode.LOST_CONFLICT);
  t.is((await client.get(k('r1', 'fc-repl')))!.bins['a'], 'five');
  const again = await client.applyReplicated(v5, 'generation');
  t.is(again.resultCode, ResultCode.LOST_CONFLICT);
  const tomb = await client.applyReplicated({ ...base, generation: 6, lutMs: Date.now(), bins: [], tombstone: true }, 'generation');
  t.is(tomb.resultCode, ResultCode.OK);
  t.is(await client.get(k('r1', 'fc-repl')), null);
  const lut = await client.applyReplicated({ ...base, generation: 1, lutMs: Date.now() + 1000, bins: [{ name: 'a', ...toWireValue('lut') }] }, 'last-update-time');
  t.is(lut.resultCode, ResultCode.OK);
  t.is((await client.get(k('r1', 'fc-repl')))!.bins['a'], 'lut');
});

test.serial('hot key answers KEY_BUSY beyond the pending limit', async (t) => {
  t.is(await client.infoValue(`set-config:context=namespace;id=${ns};transaction-pending-limit=2`), 'ok');
  try {
    await client.put(k('hot'), { n: 0 });
    const res = await Promise.all(Array.from({ length: 50 }, () => codeOf(client.operate(k('hot'), [ops.incr('n', 1)]))));
    const ok = res.filter((r) => r === 'ok').length;
    const busy = res.filter((r) => r === ResultCode.KEY_BUSY).length;
    t.is(ok + busy, 50);
    t.true(busy > 0);
    t.is((await client.get(k('hot')))!.bins['n'], ok);
  } finally {
    await client.infoValue(`set-config:context=namespace;id=${ns};transaction-pending-limit=20`);
  }
});

test.serial('truncate and restart with data intact', async (t) => {
  await client.put(k('t1', 'fc-trunc'), { a: 1 });
  t.is(await client.infoValue(`truncate:namespace=${ns};set=fc-trunc`), 'ok');
  t.is(await client.get(k('t1', 'fc-trunc')), null);
  for (let i = 0; i < 30; i++) await client.put(k(`keep${i}`), { i, l: [i] });
  client.close();
  await node.restart();
  client = await connect();
  for (let i = 0; i < 30; i++) t.deepEqual((await client.get(k(`keep${i}`)))!.bins, { i, l: [i] });
  t.is(await client.get(k('t1', 'fc-trunc')), null);
});

test.serial('a scan running past its transaction_ttl ends with TIMEOUT', async (t) => {
  for (let i = 0; i < 20; i++) await client.put(k(i, 'fc-slow'), { i });
  // 20 records at 10 per second need ~2 s; the scan may run for 300 ms.
  const err = await t.throwsAsync(
    async () => {
      for await (const _ of client.scan(ns, { set: 'fc-slow', recordsPerSecond: 10, timeoutMs: 300 })) void _;
    },
    { instanceOf: AerospikeError },
  );
  t.is(err?.code, ResultCode.TIMEOUT);
});

test.serial('a scan consumer may stop early; the client stays usable', async (t) => {
  let n = 0;
  for await (const r of client.scan(ns, { set: 'fc-scan' })) {
    void r;
    if (++n === 5) break;
  }
  t.is(n, 5);
  t.deepEqual((await client.get(k(3, 'fc-scan')))!.bins['i'], 3);
  let all = 0;
  for await (const r of client.scan(ns, { set: 'fc-scan' })) if (r) all++;
  t.is(all, 120);
});
