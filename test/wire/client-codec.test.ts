import test from 'ava';
import { packValue, unpackValue } from '../../store/client/msgpack.js';
import { GeoJSON, RawValue, fromWireValue, toWireValue } from '../../store/client/values.js';
import { encodeRecordCommand, encodeReplicatedWrite } from '../../store/client/request.js';
import { parsePeers } from '../../store/client/client.js';
import { parseRecordRequest } from '../../store/wire/command.js';
import { decodeMsg, encodeMsg } from '../../store/wire/message.js';
import { computeDigest } from '../../store/digest.js';
import { ExistsPolicy, GenerationPolicy, OpType, ParticleType, type RecordCommand } from '../../store/types.js';

test('msgpack matches the bytes the official client sends', (t) => {
  t.is(packValue([1, 'a', 2.5]).toString('hex'), '9301a20361cb4004000000000000');
  t.deepEqual(unpackValue(Buffer.from('9301a20361cb4004000000000000', 'hex')), [1, 'a', 2.5]);
  // K-ordered map as the Node client sends a plain object: leading ext pair is skipped.
  t.deepEqual(unpackValue(Buffer.from('83c70001c0a2036101a20362a20378', 'hex')), { a: 1, b: 'x' });
  const nested = { l: [1, -1, -200, 70000, 2 ** 40, -(2 ** 40), 9007199254740993n, true, false, null], b: Buffer.from([1, 2]), m: { x: 'y' }, s: 'ü'.repeat(40) };
  t.deepEqual(unpackValue(packValue(nested)), nested);
  t.deepEqual(unpackValue(packValue(new Map<number, string>([[1, 'one']]))), new Map([[1, 'one']]));
  t.throws(() => unpackValue(Buffer.from('93', 'hex')));
});

test('wire values round-trip every particle type', (t) => {
  const cases: Array<[unknown, number]> = [
    [42, ParticleType.INTEGER],
    [-5n * 10n ** 17n, ParticleType.INTEGER],
    [1.5, ParticleType.FLOAT],
    ['hello', ParticleType.STRING],
    [Buffer.from([1, 2, 3]), ParticleType.BLOB],
    [true, ParticleType.BOOL],
    [[1, 'a', 2.5], ParticleType.LIST],
    [{ a: 1, b: 'x' }, ParticleType.MAP],
  ];
  for (const [v, type] of cases) {
    const w = toWireValue(v as never);
    t.is(w.type as number, type);
    t.deepEqual(fromWireValue(w), v as never);
  }
  t.is(toWireValue(42).bytes.toString('hex'), '000000000000002a');
  t.is(toWireValue(1.5).bytes.toString('hex'), '3ff8000000000000');
  const geo = toWireValue(new GeoJSON('{"type":"Point","coordinates":[1,2]}'));
  t.is(geo.type, ParticleType.GEOJSON);
  t.is(geo.bytes.subarray(0, 3).toString('hex'), '000000');
  t.is((fromWireValue(geo) as GeoJSON).text, '{"type":"Point","coordinates":[1,2]}');
  const raw = fromWireValue({ type: ParticleType.JAVA_BLOB, bytes: Buffer.from('ab') });
  t.true(raw instanceof RawValue);
  t.is(toWireValue(raw).type, ParticleType.JAVA_BLOB);
  t.is(toWireValue(null).type, ParticleType.NULL);
});

test('client requests parse back to the same store command', (t) => {
  const digest = computeDigest('demo', 'k');
  const base = { namespace: 'test', set: 'demo', digest };
  const cmds: RecordCommand[] = [
    { ...base, ops: [], readAll: true, timeoutMs: 1000 },
    { ...base, ops: [], headerOnly: true },
    { ...base, ops: [{ op: OpType.READ, bin: 'a', value: { type: 0, bytes: Buffer.alloc(0) } }] },
    { ...base, ops: [{ op: OpType.WRITE, bin: 'a', value: toWireValue('x') }], ttlS: 100, exists: ExistsPolicy.CREATE_ONLY, key: { type: 3, bytes: Buffer.from('k') } },
    { ...base, ops: [{ op: OpType.WRITE, bin: 'a', value: toWireValue(1) }], ttlS: -1, exists: ExistsPolicy.REPLACE_ONLY, generationPolicy: GenerationPolicy.EXPECT_EQUAL, generation: 4 },
    { ...base, ops: [{ op: OpType.DELETE, bin: '', value: { type: 0, bytes: Buffer.alloc(0) } }], durableDelete: true },
    { ...base, ops: [{ op: OpType.INCR, bin: 'n', value: toWireValue(2) }, { op: OpType.READ, bin: 'n', value: { type: 0, bytes: Buffer.alloc(0) } }], ttlS: -2, respondAllOps: true },
  ];
  for (const cmd of cmds) {
    const e = encodeRecordCommand(cmd);
    const parsed = parseRecordRequest(decodeMsg(encodeMsg(e.header, e.fields, e.ops)));
    if (!parsed.ok) {
      t.fail(parsed.message);
      continue;
    }
    const back = parsed.value.cmd;
    t.is(back.namespace, cmd.namespace);
    t.deepEqual(back.digest, cmd.digest);
    t.deepEqual(back.ops.map((o) => [o.op, o.bin, o.value.type, o.value.bytes.toString('hex')]), cmd.ops.map((o) => [o.op, o.bin, o.value.type, o.value.bytes.toString('hex')]));
    t.is(!!back.readAll, !!cmd.readAll);
    t.is(!!back.headerOnly, !!cmd.headerOnly);
    if (cmd.ttlS !== undefined) t.is(back.ttlS, cmd.ttlS);
    if (cmd.exists !== undefined) t.is(back.exists, cmd.exists);
    if (cmd.generationPolicy !== undefined) t.is(back.generation, cmd.generation);
    t.is(!!back.durableDelete, !!cmd.durableDelete);
    t.is(!!back.respondAllOps, !!cmd.respondAllOps);
    if (cmd.key) t.deepEqual(back.key, cmd.key);
  }
  const rw = encodeReplicatedWrite({ ...base, generation: 3, lutMs: 99, voidTimeS: 0, tombstone: false, bins: [{ name: 'a', ...toWireValue('x') }] }, 'generation');
  const parsed = parseRecordRequest(decodeMsg(encodeMsg(rw.header, rw.fields, rw.ops)));
  t.true(parsed.ok && parsed.value.replicated?.version.generation === 3 && parsed.value.replicated.version.bins[0]!.name === 'a');
});

test('peers parsing', (t) => {
  t.deepEqual(parsePeers('1,3000,[]'), []);
  t.deepEqual(parsePeers('2,,[[BB9020011AC4203,,[127.0.0.1:4000]]]'), [{ nodeId: 'BB9020011AC4203', addresses: [{ host: '127.0.0.1', port: 4000 }] }]);
  t.deepEqual(parsePeers('2,3000,[[A,,[10.0.0.1,[::1]:3001]],[B,,[10.0.0.2:5000]]]'), [
    { nodeId: 'A', addresses: [{ host: '10.0.0.1', port: 3000 }, { host: '::1', port: 3001 }] },
    { nodeId: 'B', addresses: [{ host: '10.0.0.2', port: 5000 }] },
  ]);
});
