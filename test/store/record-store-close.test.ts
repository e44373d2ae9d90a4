/**
 * A commit asked of a closed or abandoned record store fails with CLOSED at once (it used to wait
 * forever, and a commit-to-device write racing a shutdown never answered).
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRecordStore } from '../../store/storage/record-store.js';
import { StorageError } from '../../store/storage/errors.js';

const open = async (dir: string) =>
  (
    await openRecordStore({
      name: 'test',
      files: [join(dir, 'dev')],
      fileBytes: 8 * 1024 * 1024,
      memoryBytes: 0,
      blockBytes: 128 * 1024,
      stateDir: dir,
      flushMaxMs: 1000,
      defragLwmPct: 50,
      defragSleepMs: 10,
      readCacheBlocks: 4,
    })
  ).store;

for (const how of ['close', 'abandon'] as const) {
  test(`commit() after ${how} rejects with CLOSED instead of never settling`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-rs-close-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const store = await open(dir);
    await store.commit();
    await store[how]();
    const err = await t.throwsAsync(store.commit(), { instanceOf: StorageError });
    t.is(err?.code, 'CLOSED');
  });
}
