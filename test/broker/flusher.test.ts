/**
 * Group commit must not acknowledge what a failed fsync left off the disk. The failure is a real
 * one: the active segment's log file descriptor is pointed at a FIFO, on which fsync(2) fails
 * with EINVAL, after the batch was appended.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { Flusher } from '../../broker/log/flusher.js';
import { PartitionLog, logConfigDefaults } from '../../broker/log/partitionLog.js';
import { ErrorCode, KafkaError } from '../../broker/protocol/errors.js';
import { validateProducedBatch } from '../../broker/protocol/recordBatch.js';
import { buildBatch } from './batches.js';
import { tempDir } from './helpers.js';

/** Swaps the active segment's log fd (a private field) for `fd`; returns the one it had. */
function swapLogFd(log: PartitionLog, fd: number): number {
  const seg = log.segments[log.segments.length - 1] as unknown as { logFd: number };
  const old = seg.logFd;
  seg.logFd = fd;
  return old;
}

test('a failed fsync rejects the round\'s waiters, keeps the log dirty and its high watermark put; the next round flushes it again', async (t) => {
  const dir = tempDir(t);
  const log = PartitionLog.open(path.join(dir, 'p0'), { ...logConfigDefaults, highWatermarkOnFsync: true });
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const fifoFd = fs.openSync(fifo, 'r+'); // O_RDWR on a FIFO does not block on Linux
  let rounds = 0;
  const flusher = new Flusher(() => rounds++);

  const batch = buildBatch({ values: ['a', 'b'] });
  log.append(batch, validateProducedBatch(batch, 1 << 20));
  t.is(log.logEndOffset, 2);
  flusher.markDirty(log);
  const realFd = swapLogFd(log, fifoFd);
  const err = await t.throwsAsync(flusher.whenDurable(), { instanceOf: KafkaError });
  t.is(err?.code, ErrorCode.KAFKA_STORAGE_ERROR);
  t.is(log.highWatermark, 0, 'nothing became visible as durable');
  t.true(log.dirty, 'the segment still counts as dirty');

  // The disk is back: a round without a new markDirty must flush the log again.
  swapLogFd(log, realFd);
  fs.closeSync(fifoFd);
  await flusher.whenDurable();
  t.is(log.highWatermark, 2);
  t.false(log.dirty);
  t.is(rounds, 2);
  log.close();
});

test('a waiter of a round whose flushes all succeed resolves; one failing target fails every waiter of its round only', async (t) => {
  const dir = tempDir(t);
  const good = PartitionLog.open(path.join(dir, 'good'), { ...logConfigDefaults, highWatermarkOnFsync: true });
  const bad = PartitionLog.open(path.join(dir, 'bad'), { ...logConfigDefaults, highWatermarkOnFsync: true });
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const fifoFd = fs.openSync(fifo, 'r+');
  const flusher = new Flusher();
  for (const log of [good, bad]) {
    const b = buildBatch({ values: ['x'] });
    log.append(b, validateProducedBatch(b, 1 << 20));
    flusher.markDirty(log);
  }
  const realFd = swapLogFd(bad, fifoFd);
  const both = [flusher.whenDurable(), flusher.whenDurable()];
  const settled = await Promise.allSettled(both);
  t.deepEqual(settled.map((s) => s.status), ['rejected', 'rejected']);
  t.is(good.highWatermark, 1, 'the good log was flushed in that round');
  t.is(bad.highWatermark, 0);
  swapLogFd(bad, realFd);
  fs.closeSync(fifoFd);
  await flusher.whenDurable();
  t.is(bad.highWatermark, 1);
  good.close();
  bad.close();
});
