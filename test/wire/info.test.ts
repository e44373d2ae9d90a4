import test from 'ava';
import { parsePartitionBitmap, partitionBitmapBase64, peersValue, replicasValue, singleNodeView } from '../../store/wire/info.js';
import { isScanMessage, parseScanRequest } from '../../store/wire/scan.js';
import { decodeMsg, emptyHeader, field, op, encodeMsg } from '../../store/wire/message.js';
import { ResultCode } from '../../store/types.js';

test('replica bitmaps are 684 base64 characters, MSB first', (t) => {
  const all = partitionBitmapBase64(() => true);
  t.is(all.length, 684);
  t.is(all, '/'.repeat(682) + '8=');
  const even = partitionBitmapBase64((p) => p % 2 === 0);
  t.true(even.startsWith('qqqq'));
  t.true(even.endsWith('qqo='));
  const odd = partitionBitmapBase64((p) => p % 2 === 1);
  t.true(odd.startsWith('VVVV'));
  t.true(odd.endsWith('VVU='));
  const only7 = parsePartitionBitmap(partitionBitmapBase64((p) => p === 7));
  t.true(only7(7));
  t.false(only7(6));
  t.false(only7(4095));
});

test('replicas value for a single node and for a shaped owner table', (t) => {
  t.is(replicasValue(['test', 'bar'], singleNodeView()), `test:0,1,${'/'.repeat(682)}8=;bar:0,1,${'/'.repeat(682)}8=`);
  const twoReplicas = replicasValue(['test'], {
    ownership: () => ({ regime: 0, replicas: [(p) => p % 2 === 0, (p) => p % 2 === 1] }),
  });
  const [, rest] = twoReplicas.split(':');
  const parts = rest!.split(',');
  t.is(parts[0], '0');
  t.is(parts[1], '2');
  t.is(parts.length, 4);
  t.true(parsePartitionBitmap(parts[3]!)(1));
});

test('peers value: empty, default port dropped, IPv6 bracketed', (t) => {
  t.is(peersValue(1, 3000, []), '1,3000,[]');
  t.is(
    peersValue(2, 3000, [
      { nodeId: 'BB9020011AC4203', addresses: [{ host: '127.0.0.1', port: 4000 }] },
      { nodeId: 'A1', addresses: [{ host: '::1', port: 3000 }] },
    ]),
    '2,3000,[[BB9020011AC4203,,[127.0.0.1:4000]],[A1,,[[::1]]]]',
  );
});

test('scan request parsing: pid array, digest resume, max records, refusals', (t) => {
  const pids = Buffer.alloc(8);
  [0, 1, 2, 4095].forEach((p, i) => pids.writeUInt16LE(p, i * 2));
  const digest = Buffer.from('ec91192d4b7f8ce35d5d78d34bca65cbaaaac960', 'hex');
  const max = Buffer.alloc(8);
  max.writeBigUInt64BE(10n);
  const msg = decodeMsg(
    encodeMsg({ ...emptyHeader(), info1: 1, info3: 4, recordTtl: 0xffffffff }, [
      field(0, 'test'),
      field(1, 'demo'),
      field(9, Buffer.from('00007530', 'hex')),
      field(7, Buffer.alloc(8, 1)),
      field(11, pids),
      field(12, digest),
      field(13, max),
    ], [op(1, 'v')]),
  );
  const r = parseScanRequest(msg);
  if (!r.ok) return t.fail(r.message);
  t.is(r.value.set, 'demo');
  t.deepEqual(r.value.partitions.map((p) => p.pid), [0, 1, 2, 4095, 492]);
  t.deepEqual(r.value.partitions[4]!.afterDigest, digest);
  t.is(r.value.maxRecords, 10);
  t.deepEqual(r.value.bins, ['v']);
  const all = parseScanRequest(decodeMsg(encodeMsg({ ...emptyHeader(), info1: 0x21 }, [field(0, 'test')])));
  t.true(all.ok && all.value.partitions.length === 4096 && all.value.headerOnly);
  const code = (fields: ReturnType<typeof field>[], info2 = 0, ops: ReturnType<typeof op>[] = []): number => {
    const p = parseScanRequest(decodeMsg(encodeMsg({ ...emptyHeader(), info1: 1, info2 }, fields, ops)));
    return p.ok ? 0 : p.resultCode;
  };
  t.is(code([field(0, 'test')], 1, [op(2, 'bg', 1, Buffer.alloc(8))]), ResultCode.UNSUPPORTED_FEATURE);
  t.is(code([field(0, 'test'), field(22, Buffer.alloc(4))]), ResultCode.SINDEX_NOT_FOUND);
  t.is(code([field(0, 'test'), field(33, Buffer.of(1))]), ResultCode.UNSUPPORTED_FEATURE);
  t.is(code([field(0, 'test'), field(11, Buffer.alloc(3))]), ResultCode.PARAMETER);
  t.is(code([field(0, 'test'), field(11, Buffer.from('ffff', 'hex'))]), ResultCode.PARAMETER);
  t.is(code([field(0, 'test'), field(199, 'x')]), ResultCode.PARAMETER);
  t.is(code([field(1, 'demo')]), ResultCode.PARAMETER);
  t.is(code([field(0, 'test')], 0, [op(4, 'l', 4, Buffer.of(0x91, 0x10))]), ResultCode.UNSUPPORTED_FEATURE);
});

test('scan detection: no digest plus a scan marker', (t) => {
  const msg = (info3: number, fields: ReturnType<typeof field>[]) => decodeMsg(encodeMsg({ ...emptyHeader(), info1: 1, info3 }, fields));
  t.true(isScanMessage(msg(4, [field(0, 'test')])));
  t.true(isScanMessage(msg(0, [field(0, 'test'), field(7, Buffer.alloc(8))])));
  t.false(isScanMessage(msg(0, [field(0, 'test'), field(1, 'demo')])));
  t.false(isScanMessage(msg(4, [field(0, 'test'), field(4, Buffer.alloc(20))])));
  t.false(isScanMessage(decodeMsg(encodeMsg({ ...emptyHeader(), info1: 8 }, [field(41, Buffer.alloc(5))]))));
});
