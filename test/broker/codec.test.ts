import test from 'ava';
import { Reader, Writer } from '../../broker/protocol/codec.js';
import { DecodeError } from '../../broker/protocol/errors.js';
import { parseRequestHeader } from '../../broker/protocol/header.js';
import { recordTimestamps } from '../../broker/protocol/recordBatch.js';
import { buildBatch } from './batches.js';

test('writer grows across many small fields and big chunks; reader reads them back', (t) => {
  const w = new Writer(8);
  const big = Buffer.alloc(10_000, 7);
  for (let i = 0; i < 300; i++) w.int8(-1).int16(-i - 1).int32(i * 1000).int64(BigInt(i) * 10_000_000_000n).nullableString(i % 3 ? `s${i}` : null);
  w.bytes(big).varint(-1).varint(300).varint(-2_000_000_000).unsignedVarint(2 ** 40).array([1, 2, 3], (w, n) => w.int32(n));
  const buf = w.toBuffer();
  t.is(buf.length, w.length);
  const r = new Reader(buf);
  for (let i = 0; i < 300; i++) {
    t.is(r.int8(), -1);
    t.is(r.int16(), -i - 1);
    t.is(r.int32(), i * 1000);
    t.is(r.int64(), BigInt(i) * 10_000_000_000n);
    t.is(r.nullableString(), i % 3 ? `s${i}` : null);
  }
  t.true(r.bytes().equals(big));
  t.is(r.varint(), -1);
  t.is(r.varint(), 300);
  t.is(r.varint(), -2_000_000_000);
  t.is(r.unsignedVarint(), 2 ** 40);
  t.deepEqual(r.array((r) => r.int32()), [1, 2, 3]);
  t.is(r.remaining, 0);
  t.is(t.throws(() => r.int8(), { instanceOf: DecodeError })!.code, 'TRUNCATED');
});

test('zigzag -1 is the single byte 0x01; header v1 parse; lengths checked', (t) => {
  t.deepEqual([...new Writer().varint(-1).toBuffer()], [1]);
  const h = new Writer().int16(3).int16(4).int32(42).nullableString('cli').int32(-1).toBuffer();
  const r = new Reader(h);
  t.deepEqual(parseRequestHeader(r), { apiKey: 3, apiVersion: 4, correlationId: 42, clientId: 'cli' });
  t.is(r.int32(), -1);
  t.is(t.throws(() => new Reader(new Writer().int16(-7).toBuffer()).nullableString(), { instanceOf: DecodeError })!.code, 'BAD_LENGTH');
  t.is(t.throws(() => new Reader(new Writer().int32(5).toBuffer()).array((r) => r.int32()), { instanceOf: DecodeError })!.code, 'BAD_LENGTH');
});

test('record walker yields offsets and timestamps of every record', (t) => {
  const batch = buildBatch({ values: ['a', 'bb', 'ccc'], timestamps: [5000, 4000, 6000] });
  t.deepEqual(recordTimestamps(batch), [
    { offset: 0, timestamp: 5000 },
    { offset: 1, timestamp: 4000 },
    { offset: 2, timestamp: 6000 },
  ]);
});
