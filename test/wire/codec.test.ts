import test, { type ExecutionContext } from 'ava';
import { deflateSync } from 'node:zlib';
import {
  FrameParser,
  PROTO_BODY_BYTES_MAX,
  ProtoType,
  compressMessage,
  decompressBody,
  encodeFrame,
  encodeProtoHeader,
  readProtoHeader,
} from '../../store/wire/proto.js';
import { WireError, WireErrorCode } from '../../store/wire/errors.js';
import {
  FieldType,
  Info3,
  MsgBlockWriter,
  decodeMsg,
  decodeMsgs,
  emptyHeader,
  encodeMsg,
  encodeMsgFrame,
  field,
  op,
} from '../../store/wire/message.js';
import {
  encodeInfoRequest,
  encodeInfoResponse,
  infoError,
  parseInfoCommand,
  parseInfoError,
  parseInfoRequest,
  parseInfoResponse,
} from '../../store/wire/info-codec.js';
import { decodeBatchField, encodeBatchField } from '../../store/wire/batch.js';
import { decodeReplicatedField, encodeReplicatedField } from '../../store/wire/replicated.js';
import { parseRecordRequest, requestTtlS } from '../../store/wire/command.js';
import { ExistsPolicy, GenerationPolicy, OpType, ResultCode } from '../../store/types.js';

const errCode = (t: ExecutionContext, fn: () => unknown): string => {
  const err = t.throws(fn, { instanceOf: WireError }) as WireError | undefined;
  return err?.code ?? 'none';
};
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// The captured put({i:42, s:'hello'}) of docs section 8.
const PUT_FRAME = hex(`
  0203000000000060
  16 00 01 00 00 00 00000000 00000000 000003e8 0003 0002
  00000005 00 74657374
  00000005 01 64656d6f
  00000015 04 ec91192d4b7f8ce35d5d78d34bca65cbaaaac960
  0000000d 02 01 00 01 69 000000000000002a
  0000000a 02 03 00 01 73 68656c6c6f`);
const GET_RESPONSE_BODY = hex(`
  16 00 00 00 00 00 00000001 00000000 00000000 0000 0002
  0000000d 01 01 00 01 69 000000000000002a
  0000000a 01 03 00 01 73 68656c6c6f`);
const DIGEST = hex('ec91192d4b7f8ce35d5d78d34bca65cbaaaac960');

test('proto header round-trips and enforces version and size', (t) => {
  const h = encodeProtoHeader(ProtoType.AS_MSG, 96);
  t.is(h.toString('hex'), '0203000000000060');
  t.deepEqual(readProtoHeader(h), { version: 2, type: 3, size: 96 });
  const bad = Buffer.from(h);
  bad[0] = 3;
  t.is(t.throws(() => readProtoHeader(bad), { instanceOf: WireError })!.code, WireErrorCode.BAD_VERSION);
  const big = encodeProtoHeader(ProtoType.INFO, 0);
  big.writeUIntBE(PROTO_BODY_BYTES_MAX + 1, 2, 6);
  t.is(t.throws(() => readProtoHeader(big), { instanceOf: WireError })!.code, WireErrorCode.TOO_LARGE);
  t.is(t.throws(() => readProtoHeader(h.subarray(0, 7)), { instanceOf: WireError })!.code, WireErrorCode.TRUNCATED);
  t.throws(() => encodeProtoHeader(3, PROTO_BODY_BYTES_MAX + 1), { instanceOf: WireError });
});

test('frame parser reassembles frames split at every byte and several frames in one chunk', (t) => {
  const info = encodeFrame(ProtoType.INFO, Buffer.from('node\n'));
  const stream = Buffer.concat([PUT_FRAME, info, encodeFrame(ProtoType.INFO, Buffer.alloc(0))]);
  const p = new FrameParser();
  const frames = [];
  for (let i = 0; i < stream.length; i++) frames.push(...p.push(stream.subarray(i, i + 1)));
  t.is(frames.length, 3);
  t.is(frames[0]!.type, 3);
  t.deepEqual(frames[0]!.body, PUT_FRAME.subarray(8));
  t.is(frames[1]!.body.toString(), 'node\n');
  t.is(frames[2]!.body.length, 0);
  t.is(p.pendingBytes, 0);
  const all = new FrameParser().push(stream);
  t.is(all.length, 3);
  const partial = new FrameParser();
  t.deepEqual(partial.push(stream.subarray(0, 50)), []);
  t.is(partial.pendingBytes, 42);
});

test('frame parser fails and stays failed on a bad header', (t) => {
  const p = new FrameParser(1024);
  t.is(t.throws(() => p.push(Buffer.from('GET / HTTP/1.1\r\n')), { instanceOf: WireError })!.code, WireErrorCode.BAD_VERSION);
  t.throws(() => p.push(PUT_FRAME), { instanceOf: WireError });
  const q = new FrameParser(1024);
  t.is(errCode(t, () => q.push(encodeProtoHeader(3, 1025))), WireErrorCode.TOO_LARGE);
});

test('AS_MSG decode of the captured put, and encode reproduces it byte for byte', (t) => {
  const [frame] = new FrameParser().push(PUT_FRAME);
  const m = decodeMsg(frame!.body);
  t.is(m.info2, 1);
  t.is(m.transactionTtl, 1000);
  t.deepEqual(m.fields.map((f) => f.type), [0, 1, 4]);
  t.is(m.fields[0]!.data.toString(), 'test');
  t.deepEqual(m.fields[2]!.data, DIGEST);
  t.is(m.ops.length, 2);
  t.is(m.ops[0]!.name.toString(), 'i');
  t.is(m.ops[0]!.particleType, 1);
  t.is(m.ops[0]!.value.readBigInt64BE(), 42n);
  t.is(m.ops[1]!.value.toString(), 'hello');
  const again = encodeMsgFrame(m, m.fields, m.ops);
  t.deepEqual(again, PUT_FRAME);
});

test('AS_MSG response encode matches the captured get response', (t) => {
  const body = encodeMsg({ ...emptyHeader(), generation: 1 }, [], [
    op(1, 'i', 1, hex('000000000000002a')),
    op(1, 's', 3, Buffer.from('hello')),
  ]);
  t.deepEqual(body, GET_RESPONSE_BODY);
  const m = decodeMsg(body);
  t.is(m.generation, 1);
  t.is(m.ops[1]!.value.toString(), 'hello');
});

test('AS_MSG decode rejects truncated and malformed bodies with typed errors', (t) => {
  const body = PUT_FRAME.subarray(8);
  for (let cut = 0; cut < body.length; cut++) {
    const err = t.throws(() => decodeMsg(body.subarray(0, cut)), { instanceOf: WireError });
    t.true([WireErrorCode.TRUNCATED, WireErrorCode.BAD_HEADER].includes(err!.code as 'TRUNCATED'), `cut ${cut}`);
  }
  const badHeader = Buffer.from(body);
  badHeader[0] = 21;
  t.is(errCode(t, () => decodeMsg(badHeader)), WireErrorCode.BAD_HEADER);
  const zeroField = Buffer.from(body);
  zeroField.writeUInt32BE(0, 22);
  t.is(errCode(t, () => decodeMsg(zeroField)), WireErrorCode.BAD_FIELD);
  const badOp = Buffer.from(body);
  // first op starts after 3 fields: 22 + 9 + 9 + 25 = 65; size 3 < 4 + name_len
  badOp.writeUInt32BE(3, 65);
  t.is(errCode(t, () => decodeMsg(badOp)), WireErrorCode.BAD_OP);
  t.is(errCode(t, () => decodeMsg(Buffer.concat([body, Buffer.of(0)]))), WireErrorCode.BAD_HEADER);
});

test('compressed messages: round trip, and inflated size and inner type are checked', (t) => {
  const c = compressMessage(PUT_FRAME);
  t.is(c[1], 4);
  const [frame] = new FrameParser().push(c);
  t.deepEqual(decompressBody(frame!.body), PUT_FRAME.subarray(8));
  const lie = Buffer.from(frame!.body);
  lie.writeBigUInt64BE(BigInt(PUT_FRAME.length + 1), 0);
  t.is(errCode(t, () => decompressBody(lie)), WireErrorCode.BAD_COMPRESSION);
  const info = encodeFrame(1, Buffer.from('node\n'));
  const z = Buffer.concat([Buffer.alloc(8), deflateSync(info)]);
  z.writeBigUInt64BE(BigInt(info.length), 0);
  t.is(errCode(t, () => decompressBody(z)), WireErrorCode.BAD_COMPRESSION);
  t.is(errCode(t, () => decompressBody(Buffer.from('0000000000000010ffff', 'hex'))), WireErrorCode.BAD_COMPRESSION);
  t.is(errCode(t, () => decompressBody(Buffer.alloc(3))), WireErrorCode.TRUNCATED);
});

test('block writer packs messages into proto frames no larger than the block', (t) => {
  const w = new MsgBlockWriter(100);
  for (let i = 0; i < 10; i++) w.add({ ...emptyHeader(), transactionTtl: i }, [field(FieldType.NAMESPACE, 'test')]);
  w.add({ ...emptyHeader(), info3: Info3.LAST });
  w.flush();
  const frames = w.take();
  t.true(frames.length > 1);
  const msgs = frames.flatMap((f) => {
    t.true(f.length - 8 <= 100);
    return decodeMsgs(f.subarray(8));
  });
  t.deepEqual(msgs.map((m) => m.transactionTtl), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);
  t.is(msgs.at(-1)!.info3, Info3.LAST);
});

test('info request and response codec follows the transcript', (t) => {
  const req = parseInfoRequest(Buffer.from('node\npartition-generation\nbuild\n'));
  t.deepEqual(req.map((r) => r.name), ['node', 'partition-generation', 'build']);
  const ua = parseInfoCommand('user-agent-set:value=MSxub2RlanMtNi43LjEsbm90LXNldA==');
  t.is(ua.name, 'user-agent-set');
  t.is(ua.params['value'], 'MSxub2RlanMtNi43LjEsbm90LXNldA==');
  const tr = parseInfoCommand('truncate:namespace=test;set=demo');
  t.deepEqual(tr.params, { namespace: 'test', set: 'demo' });
  const ns = parseInfoCommand('namespace/test');
  t.is(ns.name, 'namespace');
  t.deepEqual(ns.positional, ['test']);
  t.deepEqual(parseInfoCommand('sets/test/demo').positional, ['test', 'demo']);
  t.is(encodeInfoRequest(['node', 'build']).toString(), 'node\nbuild\n');
  const resp = encodeInfoResponse([
    ['node', 'BB9020011AC4202'],
    ['partition-generation', '1'],
    ['build', '8.1.1.0'],
  ]);
  t.is(resp.toString(), 'node\tBB9020011AC4202\npartition-generation\t1\nbuild\t8.1.1.0\n');
  const parsed = parseInfoResponse(resp);
  t.is(parsed.get('build'), '8.1.1.0');
  t.is(infoError(4, 'unrecognized command'), 'ERROR:4:unrecognized command');
  t.deepEqual(parseInfoError('ERROR::x'), { code: 1, message: 'x' });
  t.deepEqual(parseInfoError('ERROR:20:no ns'), { code: 20, message: 'no ns' });
  t.is(parseInfoError('ok'), undefined);
});

// Captured batchGet([key1, nokey]) field 41 payload, docs section 9.
const BATCH_FIELD = hex(`
  00000002 0d
  00000000 ec91192d4b7f8ce35d5d78d34bca65cbaaaac960 0a 03 00 00 00000000 0002 0000 00000005 00 74657374 00000005 01 64656d6f
  00000001 0df7fa69b944a8131f4e02027ab8fa32e50f5f47 01`);

test('batch field decodes the captured batchGet including the REPEAT row', (t) => {
  const b = decodeBatchField(BATCH_FIELD);
  t.is(b.flags, 0x0d);
  t.is(b.rows.length, 2);
  t.is(b.rows[0]!.info1, 3);
  t.deepEqual(b.rows[0]!.digest, DIGEST);
  t.is(b.rows[1]!.index, 1);
  t.true(b.rows[1]!.repeat);
  t.is(b.rows[1]!.fields[1]!.data.toString(), 'demo');
  t.is(b.rows[1]!.info1, 3);
  // Encode -> decode keeps every attribute.
  const again = decodeBatchField(encodeBatchField(b));
  t.deepEqual(again.rows.map((r) => [r.index, r.info1, r.digest.toString('hex'), r.fields.length]), b.rows.map((r) => [r.index, r.info1, r.digest.toString('hex'), r.fields.length]));
  // Write rows with ops and generation survive.
  const w = decodeBatchField(
    encodeBatchField({
      flags: 0x0d,
      rows: [{ index: 7, digest: DIGEST, repeat: false, info1: 0, info2: 0x81, info3: 0, info4: 0, generation: 3, recordTtl: 60, fields: [field(0, 'test')], ops: [op(2, 'v', 3, Buffer.from('x'))] }],
    }),
  );
  t.is(w.rows[0]!.generation, 3);
  t.is(w.rows[0]!.recordTtl, 60);
  t.is(w.rows[0]!.ops[0]!.value.toString(), 'x');
});

test('batch field rejects malformed input with typed errors', (t) => {
  for (let cut = 0; cut < BATCH_FIELD.length; cut++) {
    t.throws(() => decodeBatchField(BATCH_FIELD.subarray(0, cut)), { instanceOf: WireError });
  }
  const repeatFirst = hex('00000001 0d 00000000 ec91192d4b7f8ce35d5d78d34bca65cbaaaac960 01');
  t.is(errCode(t, () => decodeBatchField(repeatFirst)), WireErrorCode.BAD_BATCH);
  const noNs = hex('00000001 0d 00000000 ec91192d4b7f8ce35d5d78d34bca65cbaaaac960 0a 03 00 00 00000000 0001 0000 00000005 01 64656d6f');
  t.is(errCode(t, () => decodeBatchField(noNs)), WireErrorCode.BAD_BATCH);
  const huge = hex('ffffffff 0d');
  t.is(errCode(t, () => decodeBatchField(huge)), WireErrorCode.BAD_BATCH);
});

test('replicated field round trip and validation', (t) => {
  const m = { policy: 'last-update-time' as const, tombstone: true, generation: 7, lutMs: 1_700_000_000_123, voidTimeS: 99 };
  const b = encodeReplicatedField(m);
  t.is(b.length, 19);
  t.is(b.toString('hex'), '010101' + '00000007' + '0000018bcfe5687b' + '00000063');
  t.deepEqual(decodeReplicatedField(b), m);
  t.throws(() => decodeReplicatedField(b.subarray(1)), { instanceOf: WireError });
  const badFormat = Buffer.from(b);
  badFormat[0] = 2;
  t.is(errCode(t, () => decodeReplicatedField(badFormat)), WireErrorCode.BAD_REPLICATED);
});

test('request mapping: put, get, exists, remove, policies, ttl, errors', (t) => {
  const put = decodeMsg(PUT_FRAME.subarray(8));
  const p = parseRecordRequest(put);
  if (!p.ok) return t.fail(p.message);
  t.is(p.value.namespace, 'test');
  t.is(p.value.cmd.set, 'demo');
  t.is(p.value.cmd.ops.length, 2);
  t.is(p.value.cmd.ops[0]!.op, OpType.WRITE);
  t.is(p.value.cmd.exists, ExistsPolicy.UPSERT);
  t.is(p.value.cmd.timeoutMs, 1000);
  t.is(p.value.cmd.ttlS, 0);

  const base = { ...emptyHeader(), fields: put.fields, ops: [] as ReturnType<typeof op>[] };
  const get = parseRecordRequest({ ...base, info1: 3 });
  t.true(get.ok && get.value.cmd.readAll === true);
  const exists = parseRecordRequest({ ...base, info1: 0x21 });
  t.true(exists.ok && exists.value.cmd.headerOnly === true);
  const sel = parseRecordRequest({ ...base, info1: 1, ops: [op(1, 'i'), op(1, 's')] });
  t.true(sel.ok && !sel.value.cmd.readAll && sel.value.cmd.ops.length === 2);
  const rm = parseRecordRequest({ ...base, info2: 0x13 });
  t.true(rm.ok && rm.value.cmd.ops[0]!.op === OpType.DELETE && rm.value.cmd.durableDelete === true);
  const create = parseRecordRequest({ ...base, info2: 0x21, ops: put.ops });
  t.true(create.ok && create.value.cmd.exists === ExistsPolicy.CREATE_ONLY);
  const gen = parseRecordRequest({ ...base, info2: 0x05, generation: 99, ops: put.ops });
  t.true(gen.ok && gen.value.cmd.generationPolicy === GenerationPolicy.EXPECT_EQUAL && gen.value.cmd.generation === 99);
  for (const [info3, pol] of [[0x08, ExistsPolicy.UPDATE_ONLY], [0x10, ExistsPolicy.REPLACE], [0x20, ExistsPolicy.REPLACE_ONLY]] as const) {
    const r = parseRecordRequest({ ...base, info2: 1, info3, ops: put.ops });
    t.true(r.ok && r.value.cmd.exists === pol);
  }
  const never = parseRecordRequest({ ...base, info2: 1, recordTtl: 0xffffffff, ops: put.ops });
  t.true(never.ok && never.value.cmd.ttlS === -1);
  t.is(requestTtlS(0xfffffffe), -2);
  t.is(requestTtlS(0xfffffffd), undefined);

  const code = (r: ReturnType<typeof parseRecordRequest>): number => (r.ok ? 0 : r.resultCode);
  t.is(code(parseRecordRequest({ ...base, info2: 1, recordTtl: 315_360_001, ops: put.ops })), ResultCode.PARAMETER);
  t.is(code(parseRecordRequest({ ...base, info2: 1, ops: [op(2, 'sixteen-bytes-xx', 3, Buffer.from('x'))] })), ResultCode.BIN_NAME);
  t.is(code(parseRecordRequest({ ...base, info1: 1, info2: 0x81, ops: [op(4, 'l', 4, hex('920105'))] })), ResultCode.UNSUPPORTED_FEATURE);
  t.is(code(parseRecordRequest({ ...base, info2: 1, ops: [op(99, 'x')] })), ResultCode.PARAMETER);
  t.is(code(parseRecordRequest({ ...base, info1: 3, fields: [...put.fields, field(43, hex('9301'))] })), ResultCode.UNSUPPORTED_FEATURE);
  t.is(code(parseRecordRequest({ ...base, info1: 3, fields: [...put.fields, field(200, 'x')] })), ResultCode.PARAMETER);
  t.is(code(parseRecordRequest({ ...base, info1: 3, fields: put.fields.slice(0, 2) })), ResultCode.PARAMETER);
  t.is(code(parseRecordRequest({ ...base, info1: 3, info4: 1 })), ResultCode.UNSUPPORTED_FEATURE);
  t.is(code(parseRecordRequest({ ...base })), ResultCode.PARAMETER);
  t.is(code(parseRecordRequest({ ...base, info2: 1, ops: [op(5, 'n', 3, Buffer.from('x'))] })), ResultCode.INCOMPATIBLE_TYPE);
});

test('request mapping: replicated write field 250 becomes a RecordVersion', (t) => {
  const put = decodeMsg(PUT_FRAME.subarray(8));
  const f250 = field(FieldType.FERRY_REPLICATED, encodeReplicatedField({ policy: 'generation', tombstone: false, generation: 5, lutMs: 1234, voidTimeS: 0 }));
  const r = parseRecordRequest({ ...emptyHeader(), info2: 1, fields: [...put.fields, f250, field(2, hex('036b657931'))], ops: put.ops });
  if (!r.ok) return t.fail(r.message);
  const v = r.value.replicated!.version;
  t.is(v.generation, 5);
  t.is(v.lutMs, 1234);
  t.is(v.bins.length, 2);
  t.is(v.key!.bytes.toString(), 'key1');
  t.is(r.value.replicated!.meta.policy, 'generation');
});
