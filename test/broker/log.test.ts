import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { PartitionLog, logConfigDefaults, type LogConfig } from '../../broker/log/partitionLog.js';
import { crc32c } from '../../broker/protocol/crc32c.js';
import { KafkaError } from '../../broker/protocol/errors.js';
import { iterateBatches, readBatchHeader, validateProducedBatch } from '../../broker/protocol/recordBatch.js';
import { buildBatch } from './batches.js';
import { tempDir } from './helpers.js';

const small: LogConfig = { ...logConfigDefaults, segmentBytes: 1024, indexIntervalBytes: 256 };

function append(log: PartitionLog, values: string[], extra: Parameters<typeof buildBatch>[0] = { values }): number {
  const batch = buildBatch({ ...extra, values });
  return log.append(batch, validateProducedBatch(batch, 1 << 20)).baseOffset;
}

function readValues(log: PartitionLog, from: number): number[] {
  const offsets: number[] = [];
  let next = from;
  while (next < log.logEndOffset) {
    const chunks = log.read(next, 300);
    if (chunks.length === 0) break;
    for (const c of chunks) {
      for (const { header } of iterateBatches(c)) {
        for (let o = header.baseOffset; o <= header.baseOffset + header.lastOffsetDelta; o++) if (o >= next) offsets.push(o);
        next = header.baseOffset + header.lastOffsetDelta + 1;
      }
    }
  }
  return offsets;
}

test('crc32c matches the Castagnoli check value', (t) => {
  t.is(crc32c(Buffer.from('123456789')), 0xe3069283);
});

test('offsets assigned across rolled segments; reads from any offset via the sparse index; reopen keeps everything', (t) => {
  const dir = tempDir(t);
  const log = PartitionLog.open(dir, small);
  for (let i = 0; i < 60; i++) t.is(append(log, [`a${i}`, `b${i}`, `c${i}`]), i * 3);
  t.is(log.logEndOffset, 180);
  t.true(log.segments.length > 3);
  t.deepEqual(readValues(log, 0), Array.from({ length: 180 }, (_, i) => i));
  t.deepEqual(readValues(log, 100), Array.from({ length: 80 }, (_, i) => i + 100));
  // The stored batch carries the assigned base offset, and its CRC still holds.
  const first = log.read(31, 1)[0]!;
  t.is(readBatchHeader(first)!.baseOffset, 30);
  t.notThrows(() => validateProducedBatch(first.subarray(0, readBatchHeader(first)!.sizeBytes), 1 << 20));
  log.close();
  const again = PartitionLog.open(dir, small);
  t.is(again.logEndOffset, 180);
  t.deepEqual(readValues(again, 170), Array.from({ length: 10 }, (_, i) => i + 170));
  again.close();
});

test('torn tail and corrupt tail are truncated on open, never served', (t) => {
  const dir = tempDir(t);
  const log = PartitionLog.open(dir, logConfigDefaults);
  for (let i = 0; i < 5; i++) append(log, [`v${i}`]);
  log.close();
  const file = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.log'))!);
  const goodSize = fs.statSync(file).size;
  // A partial batch at the end (crash mid-write).
  const partial = buildBatch({ values: ['torn'] }).subarray(0, 40);
  fs.appendFileSync(file, partial);
  let reopened = PartitionLog.open(dir, logConfigDefaults);
  t.is(reopened.logEndOffset, 5);
  t.is(fs.statSync(file).size, goodSize);
  t.is(append(reopened, ['after']), 5);
  reopened.close();
  // A whole batch whose bytes were damaged: its CRC fails and it is cut.
  const size = fs.statSync(file).size;
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from([0xff]), 0, 1, size - 2);
  fs.closeSync(fd);
  reopened = PartitionLog.open(dir, logConfigDefaults);
  t.is(reopened.logEndOffset, 5);
  t.deepEqual(readValues(reopened, 0), [0, 1, 2, 3, 4]);
  reopened.close();
});

test('idempotent producer batches: duplicates answered with the original offset, gaps and fenced epochs refused', (t) => {
  const log = PartitionLog.open(tempDir(t), logConfigDefaults);
  t.teardown(() => log.close());
  const p = { producerId: 7, producerEpoch: 0 };
  t.is(append(log, ['a', 'b'], { values: [], ...p, baseSequence: 0 }), 0);
  t.is(append(log, ['c'], { values: [], ...p, baseSequence: 2 }), 2);
  t.is(append(log, ['a', 'b'], { values: [], ...p, baseSequence: 0 }), 0);
  t.is(append(log, ['c'], { values: [], ...p, baseSequence: 2 }), 2);
  t.is(log.logEndOffset, 3);
  t.is(t.throws(() => append(log, ['x'], { values: [], ...p, baseSequence: 5 }), { instanceOf: KafkaError })!.code, 45);
  t.is(append(log, ['d'], { values: [], producerId: 7, producerEpoch: 1, baseSequence: 0 }), 3);
  t.is(t.throws(() => append(log, ['e'], { values: [], ...p, baseSequence: 3 }), { instanceOf: KafkaError })!.code, 47);
  // Non-idempotent batches are never deduplicated.
  t.is(append(log, ['z']), 4);
  t.is(append(log, ['z']), 5);
});

test('producer state is rebuilt from the log on open, so a retry after restart is still deduplicated', (t) => {
  const dir = tempDir(t);
  const log = PartitionLog.open(dir, logConfigDefaults);
  append(log, ['a'], { values: [], producerId: 9, producerEpoch: 0, baseSequence: 0 });
  append(log, ['b'], { values: [], producerId: 9, producerEpoch: 0, baseSequence: 1 });
  log.close();
  const again = PartitionLog.open(dir, logConfigDefaults);
  t.teardown(() => again.close());
  t.is(append(again, ['b'], { values: [], producerId: 9, producerEpoch: 0, baseSequence: 1 }), 1);
  t.is(again.logEndOffset, 2);
});

test('offset for timestamp: first record at or after T, inside batches and across segments', (t) => {
  const log = PartitionLog.open(tempDir(t), small);
  t.teardown(() => log.close());
  for (let i = 0; i < 40; i++) append(log, ['x', 'y'], { values: [], timestamps: [1000 + i * 10, 1005 + i * 10] });
  t.deepEqual(log.offsetForTimestamp(0), { offset: 0, timestamp: 1000 });
  t.deepEqual(log.offsetForTimestamp(1005), { offset: 1, timestamp: 1005 });
  t.deepEqual(log.offsetForTimestamp(1006), { offset: 2, timestamp: 1010 });
  t.deepEqual(log.offsetForTimestamp(1300), { offset: 60, timestamp: 1300 });
  t.deepEqual(log.offsetForTimestamp(1395), { offset: 79, timestamp: 1395 });
  t.is(log.offsetForTimestamp(1396), null);
});

test('retention deletes whole old segments by size and by time, never the active one', (t) => {
  const log = PartitionLog.open(tempDir(t), { ...small, retentionBytes: 3000, retentionMs: -1 });
  t.teardown(() => log.close());
  for (let i = 0; i < 100; i++) append(log, [`value-${i}`]);
  const before = log.segments.length;
  t.true(before > 4);
  t.true(log.enforceRetention(Date.now()) > 0);
  t.true(log.sizeBytes <= 3000 + small.segmentBytes);
  t.true(log.logStartOffset > 0);
  t.is(log.logEndOffset, 100);
  t.deepEqual(readValues(log, log.logStartOffset).length, 100 - log.logStartOffset);

  const timed = PartitionLog.open(tempDir(t), { ...small, retentionMs: 60_000 });
  t.teardown(() => timed.close());
  const old = Date.now() - 3_600_000;
  for (let i = 0; i < 30; i++) append(timed, [`old-${i}`], { values: [], timestamps: [old] });
  for (let i = 0; i < 30; i++) append(timed, [`new-${i}`]);
  timed.enforceRetention(Date.now());
  const start = timed.logStartOffset;
  t.true(start > 0 && start <= 30);
  t.is(timed.logEndOffset, 60);
  t.is(timed.enforceRetention(Date.now()), 0);
});

test('one broker per data directory: a live owner refuses a second open, a dead owner\'s lock is taken over', async (t) => {
  const { lockDataDir } = await import('../../broker/log/dataDirLock.js');
  const dir = tempDir(t);
  const unlock = lockDataDir(dir);
  t.throws(() => lockDataDir(dir), { message: /already open/ });
  unlock();
  // A lock left by a process that no longer exists (kill -9).
  fs.writeFileSync(path.join(dir, 'broker.lock'), '999999999');
  const again = lockDataDir(dir);
  // A lock held by a live process (our parent stands in for another broker).
  again();
  fs.writeFileSync(path.join(dir, 'broker.lock'), String(process.ppid));
  t.throws(() => lockDataDir(dir), { message: /in use by process/ });
});

test('with the high watermark on fsync, appended batches are invisible to reads and timestamp lookups until flushed', async (t) => {
  const log = PartitionLog.open(tempDir(t), { ...logConfigDefaults, highWatermarkOnFsync: true });
  t.teardown(() => log.close());
  append(log, ['a', 'b'], { values: [], timestamps: [100, 200] });
  t.is(log.logEndOffset, 2);
  t.is(log.highWatermark, 0);
  t.deepEqual(log.read(0, 1000), []);
  t.is(log.offsetForTimestamp(150), null);
  await log.flush();
  t.is(log.highWatermark, 2);
  append(log, ['c']);
  t.deepEqual(readValues(log, 0), [0, 1]);
  t.deepEqual(log.offsetForTimestamp(150), { offset: 1, timestamp: 200 });
  await log.flush();
  t.deepEqual(readValues(log, 0), [0, 1, 2]);
});
