/**
 * A partition log on a full filesystem (a small tmpfs the test mounts): a batch whose log bytes
 * fit but whose index entry needs a new page is stored and acknowledged (the index is derived,
 * rebuilt by a scan at the next open) instead of failing after it was written; a batch the log
 * cannot take fails as KAFKA_STORAGE_ERROR and leaves nothing behind; reads and a reopen see
 * exactly the acknowledged batches; appends resume once space returns. A segment roll that
 * cannot create the new segment's files (no inodes left) fails the append as KAFKA_STORAGE_ERROR,
 * not a raw ENOSPC, leaves no file behind and the log serving reads; the roll succeeds once
 * files can be created again. Needs root (mount).
 */
import test from 'ava';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PartitionLog, logConfigDefaults, type LogConfig } from '../../broker/log/partitionLog.js';
import { segmentFileName } from '../../broker/log/segment.js';
import { ErrorCode, KafkaError } from '../../broker/protocol/errors.js';
import { iterateBatches, validateProducedBatch } from '../../broker/protocol/recordBatch.js';
import { tryMountTmpfs, unmount } from '../helpers/tmpfs.js';
import { buildBatch } from './batches.js';

const FS_BYTES = 1024 * 1024;
const PAGE_BYTES = 4096;
/** Index entries that fill the index file's first page exactly (8 bytes each). */
const ENTRIES_PER_INDEX_PAGE = PAGE_BYTES / 8;
/** One index entry per batch. */
const config: LogConfig = { ...logConfigDefaults, indexIntervalBytes: 1 };

/** Files and directories the second filesystem holds at most (its root, the partition, fillers). */
const FS_INODES = 32;

const root = mkdtempSync(join(tmpdir(), 'ferry-logfull-'));
const mnt = join(root, 'mnt');
const mntInodes = join(root, 'mnt-inodes');
mkdirSync(mnt);
mkdirSync(mntInodes);
const mounted = tryMountTmpfs(mnt, FS_BYTES) && tryMountTmpfs(mntInodes, FS_BYTES, FS_INODES);
if (!mounted) console.log('broker log-full test skipped: cannot mount a tmpfs here (needs root)');
test.after.always(() => {
  unmount(mnt);
  unmount(mntInodes);
  rmSync(root, { recursive: true, force: true });
});
const maybe = mounted ? test : test.skip;

/** Fills the filesystem to the last page; the file is removed to give the space back. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [64 * 1024, PAGE_BYTES]) {
      try {
        for (;;) writeSync(fd, Buffer.alloc(size));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
}

function offsets(log: PartitionLog): number[] {
  const out: number[] = [];
  let next = 0;
  while (next < log.logEndOffset) {
    const chunks = log.read(next, 1 << 20);
    if (chunks.length === 0) break;
    for (const c of chunks) {
      for (const { header } of iterateBatches(c)) {
        for (let o = header.baseOffset; o <= header.baseOffset + header.lastOffsetDelta; o++) out.push(o);
        next = header.baseOffset + header.lastOffsetDelta + 1;
      }
    }
  }
  return out;
}

maybe('full disk: an index write that fails never fails a stored batch; the log refuses cleanly, reads and reopens see every acknowledged batch, appends resume', (t) => {
  const dir = join(mnt, 'p0');
  const log = PartitionLog.open(dir, config);
  let acked = 0;
  /** Appends one one-record batch; true when acknowledged, false on KAFKA_STORAGE_ERROR. */
  const append = (value: string): boolean => {
    const batch = buildBatch({ values: [value] });
    try {
      log.append(batch, validateProducedBatch(batch, 1 << 20));
      acked++;
      return true;
    } catch (err) {
      t.true(err instanceof KafkaError && err.code === ErrorCode.KAFKA_STORAGE_ERROR, `a storage error, not ${String(err)}`);
      return false;
    }
  };
  for (let i = 0; i < ENTRIES_PER_INDEX_PAGE; i++) t.true(append('v'));
  const indexPath = join(dir, segmentFileName(0, '.index'));
  const logPath = join(dir, segmentFileName(0, '.log'));
  const batchBytes = buildBatch({ values: ['v'] }).length;
  // The layout this test is about: the index page is full, the log's last page has room.
  t.is(statSync(indexPath).size, PAGE_BYTES);
  t.true((statSync(logPath).size % PAGE_BYTES) + batchBytes <= PAGE_BYTES, 'the next batch fits the log page');

  fill(join(mnt, 'filler'));
  t.true(append('v'), 'stored in the log page it fits: acknowledged although its index entry could not be written');
  t.is(statSync(indexPath).size, 0, 'the index files are dropped, to be rebuilt');
  while (append('x'.repeat(512)));
  t.is(log.logEndOffset, acked);
  t.deepEqual(offsets(log), Array.from({ length: acked }, (_, i) => i), 'reads see every acknowledged batch, nothing partial');

  unlinkSync(join(mnt, 'filler'));
  t.true(append('after'), 'appends resume once space returns');
  log.close();
  const again = PartitionLog.open(dir, config);
  t.is(again.logEndOffset, acked);
  t.deepEqual(offsets(again), Array.from({ length: acked }, (_, i) => i));
  t.is(statSync(indexPath).size, 8 * acked, 'the reopen rebuilt the index');
  again.close();
});

/** Creates empty files in `dir` until the filesystem refuses one (ENOSPC: no inodes left); returns them. */
function exhaustInodes(dir: string): string[] {
  const made: string[] = [];
  for (let i = 0; ; i++) {
    const f = join(dir, `filler-${i}`);
    try {
      closeSync(openSync(f, 'w'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      return made;
    }
    made.push(f);
    if (made.length > FS_INODES) throw new Error(`created ${made.length} files on a filesystem of ${FS_INODES} inodes`);
  }
}

maybe('full disk at a segment roll: the append fails as KAFKA_STORAGE_ERROR, nothing is left behind, reads go on, the roll succeeds once space returns', (t) => {
  const dir = join(mntInodes, 'p0');
  const rollConfig: LogConfig = { ...config, segmentBytes: PAGE_BYTES };
  const log = PartitionLog.open(dir, rollConfig);
  const value = 'r'.repeat(200);
  const batchBytes = buildBatch({ values: [value] }).length;
  const perSegment = Math.floor(PAGE_BYTES / batchBytes);
  const append = () => {
    const batch = buildBatch({ values: [value] });
    return log.append(batch, validateProducedBatch(batch, 1 << 20));
  };
  for (let i = 0; i < perSegment; i++) append();
  t.is(log.segments.length, 1, 'the first segment is full, the next append rolls');
  const files = readdirSync(dir).sort();

  const fillers = exhaustInodes(mntInodes);
  const err = t.throws(() => append());
  t.true(err instanceof KafkaError && err.code === ErrorCode.KAFKA_STORAGE_ERROR, `a storage error, not ${String(err)}`);
  t.regex(err!.message, /cannot create segment .*ENOSPC/);
  t.is(log.segments.length, 1, 'no half-made segment joins the log');
  t.deepEqual(readdirSync(dir).sort(), files, 'and none stays on disk');
  t.is(log.logEndOffset, perSegment);
  t.deepEqual(offsets(log), Array.from({ length: perSegment }, (_, i) => i), 'reads see every acknowledged batch');
  t.throws(() => append(), { instanceOf: KafkaError }, 'every retry fails the same clean way');

  for (const f of fillers) unlinkSync(f);
  t.is(append().baseOffset, perSegment, 'the roll succeeds once space returns');
  t.is(log.segments.length, 2);
  log.close();
  const again = PartitionLog.open(dir, rollConfig);
  t.deepEqual(offsets(again), Array.from({ length: perSegment + 1 }, (_, i) => i), 'a reopen sees every acknowledged batch');
  again.close();
});
