import test from 'ava';
import { spawn } from 'node:child_process';
import { openSync, readSync, writeSync, closeSync, statSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openNamespace } from '../../store/node.js';
import { ResultCode, WriteKind, type PartitionId } from '../../store/types.js';
import { computeDigest, partitionOf } from '../../store/digest.js';
import { binsOf, get, int, nsConfig, put, remove, str, tempDir } from '../helpers/store.js';
import { testRandom } from '../helpers/seed.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('clean shutdown restarts warm with every record, tombstone and set', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const cfg = nsConfig(dir, { 'write-block-size': 65536 });
  let ns = await openNamespace(cfg);
  for (let i = 0; i < 3000; i++) await ns.execute(put(`w${i}`, { n: int(i), s: str(`v${i}`) }));
  for (let i = 0; i < 3000; i += 3) await ns.execute(remove(`w${i}`));
  await ns.close();
  ns = await openNamespace(cfg);
  t.is(ns.openReport.mode, 'warm');
  t.is(ns.openReport.records, 3000);
  for (let i = 0; i < 3000; i++) {
    const r = await ns.execute(get(`w${i}`));
    if (i % 3 === 0) t.is(r.resultCode, ResultCode.NOT_FOUND);
    else t.deepEqual(binsOf(r.bins), { n: BigInt(i), s: `v${i}` });
  }
  await ns.execute(put('after', { a: int(1) }));
  await ns.close();
  ns = await openNamespace(cfg);
  t.is(ns.openReport.mode, 'warm');
  t.is((await ns.execute(get('after'))).resultCode, ResultCode.OK);
  await ns.close();
});

test('a crash (no shutdown) restarts cold: later writes win, deleted records stay deleted', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const cfg = nsConfig(dir, { 'write-block-size': 65536 });
  let ns = await openNamespace(cfg);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 1000; i++) await ns.execute(put(`c${i}`, { r: int(round) }));
  }
  for (let i = 0; i < 1000; i += 2) await ns.execute(remove(`c${i}`));
  await Promise.all([ns.store.commit(), ns.writeLog.commit()]);
  await ns.store.abandon();
  await ns.writeLog.abandon();
  ns = await openNamespace(cfg);
  t.is(ns.openReport.mode, 'cold');
  for (let i = 0; i < 1000; i++) {
    const r = await ns.execute(get(`c${i}`));
    if (i % 2 === 0) t.is(r.resultCode, ResultCode.NOT_FOUND, `c${i} deleted`);
    else t.deepEqual(binsOf(r.bins), { r: 2n });
  }
  // The write log came back too: every change of a key is there, in order, the delete last.
  for (const [key, want] of [['c0', [[1, WriteKind.WRITE], [2, WriteKind.WRITE], [3, WriteKind.WRITE], [4, WriteKind.DELETE]]], ['c1', [[1, WriteKind.WRITE], [2, WriteKind.WRITE], [3, WriteKind.WRITE]]]] as const) {
    const digest = computeDigest('demo', key);
    const log = ns.writeLog.read(partitionOf(digest), ns.writeLog.firstSequence(partitionOf(digest)), 10_000).filter((e) => e.digest.equals(digest));
    t.deepEqual(log.map((e) => [e.generation, e.kind]), want.map((x) => [...x]), `${key}'s write-log entries after the crash`);
  }
  await ns.close();
});

test('defragmentation under churn keeps every live record readable, across restarts', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const cfg = nsConfig(dir, { 'write-block-size': 65536, 'defrag-lwm-pct': 60, filesize: 8 * 1024 * 1024 });
  let ns = await openNamespace(cfg);
  const expect = new Map<string, string>();
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 400; i++) {
      const key = `d${i}`;
      if ((i + round) % 7 === 0) {
        await ns.execute(remove(key));
        expect.delete(key);
      } else {
        const v = `${round}-${'y'.repeat(100 + ((i * 13) % 300))}`;
        t.is((await ns.execute(put(key, { v: str(v) }))).resultCode, ResultCode.OK);
        expect.set(key, v);
      }
    }
    await ns.store.defragNow();
  }
  const stats = ns.store.stats();
  t.true(stats.defragBlocks > 0, 'defrag ran');
  t.true(stats.usedBytes < 8 * 1024 * 1024, 'space was reclaimed');
  const check = async () => {
    for (let i = 0; i < 400; i++) {
      const r = await ns.execute(get(`d${i}`));
      const want = expect.get(`d${i}`);
      if (want === undefined) t.is(r.resultCode, ResultCode.NOT_FOUND);
      else t.is(binsOf(r.bins).v, want);
    }
  };
  await check();
  await Promise.all([ns.store.commit(), ns.writeLog.commit()]);
  await ns.store.abandon();
  await ns.writeLog.abandon();
  ns = await openNamespace(cfg);
  t.is(ns.openReport.mode, 'cold');
  await check();
  await ns.close();
});

test('corrupt bytes on the device are detected and never returned as data', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const cfg = nsConfig(dir, { 'write-block-size': 65536, 'read-cache-blocks': 1 });
  let ns = await openNamespace(cfg);
  for (let i = 0; i < 2000; i++) await ns.execute(put(`x${i}`, { v: str(`value-${i}-${'z'.repeat(200)}`) }));
  await ns.close();
  // Flip a byte inside the body of a record in the first block.
  const file = cfg.files[0]!;
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, 100);
  b[0] = b[0]! ^ 0xff;
  writeSync(fd, b, 0, 1, 100);
  closeSync(fd);
  t.true(statSync(file).size > 0);
  ns = await openNamespace(cfg);
  let errors = 0;
  let good = 0;
  for (let i = 0; i < 2000; i++) {
    const r = await ns.execute(get(`x${i}`));
    if (r.resultCode === ResultCode.SERVER_ERROR) errors++;
    else {
      t.is(r.resultCode, ResultCode.OK);
      t.is(binsOf(r.bins).v, `value-${i}-${'z'.repeat(200)}`);
      good++;
    }
  }
  t.is(errors, 1, 'exactly the damaged record fails');
  t.is(good, 1999);
  t.true(Number(ns.stats().storage_checksum_errors) >= 1);
  await ns.close();
  // A cold scan reports the damage too, and still loads everything else.
  ns = await openNamespace(cfg);
  await ns.store.abandon();
  await ns.writeLog.abandon();
  ns = await openNamespace(cfg);
  t.is(ns.openReport.mode, 'cold');
  t.true(ns.openReport.corrupt >= 1);
  t.is((await ns.execute(get('x1999'))).resultCode, ResultCode.OK);
  await ns.close();
});

interface Acked {
  counter: number;
  value: string | null;
}

/** Bound on the wait for the crash writer's first acknowledged write. */
const FIRST_ACK_TIMEOUT_MS = 20_000;

async function crashOnce(dir: string, runMs: number, seed: number): Promise<{ acked: Map<string, Acked>; issued: Map<string, Acked[]> }> {
  const logPath = join(dir, 'ops.log');
  rmSync(logPath, { force: true });
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/store/fixtures/crash-writer.ts'), dir, String(seed)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('crash-writer did not start within 20 s')), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('READY')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exit.then(() => reject(new Error('crash-writer exited early')));
  });
  // The kill comes runMs after the first acknowledged write (not after READY): on a loaded
  // machine the first group commit can take longer than the whole random delay.
  const firstAckBy = Date.now() + FIRST_ACK_TIMEOUT_MS;
  while (!exited && !/^A /m.test(existsSync(logPath) ? readFileSync(logPath, 'utf8') : '')) {
    if (Date.now() > firstAckBy) throw new Error(`crash-writer acknowledged no write within ${FIRST_ACK_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, runMs));
  if (exited) throw new Error('crash-writer died on its own');
  child.kill('SIGKILL');
  await exit;
  const acked = new Map<string, Acked>();
  const issued = new Map<string, Acked[]>();
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    const m = /^([AI]) (\d+) (\S+) (.*)$/.exec(line);
    if (!m) continue;
    const counter = Number(m[2]);
    const value = m[4] === '-' ? null : m[4]!;
    const key = m[3]!;
    if (m[1] === 'I') {
      const list = issued.get(key) ?? [];
      list.push({ counter, value });
      issued.set(key, list);
    } else {
      const prev = acked.get(key);
      if (!prev || prev.counter < counter) acked.set(key, { counter, value });
    }
  }
  return { acked, issued };
}

test('kill -9 under load at random moments: every acknowledged write survives, no deleted record returns', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const cfg = nsConfig(dir, { 'commit-to-device': true, 'write-block-size': 65536, 'defrag-lwm-pct': 60, filesize: 16 * 1024 * 1024, 'write-log-entries': 4096 });
  const ITERATIONS = 6;
  let checked = 0;
  // The kill moments and each child's workload follow the seed (the exact interleaving with
  // the device still varies: a kill lands wherever the writer is at that moment).
  const r = testRandom(t);
  for (let it = 0; it < ITERATIONS; it++) {
    const { acked, issued } = await crashOnce(dir, 150 + r.int(600), r.u32());
    t.true(acked.size > 0, `iteration ${it}: the child acknowledged writes`);
    const ns = await openNamespace(cfg);
    t.is(ns.openReport.mode, 'cold');
    for (const [key, a] of acked) {
      const r = await ns.execute(get(key));
      const stored = r.resultCode === ResultCode.OK ? String(binsOf(r.bins).v) : null;
      if (stored === a.value) {
        checked++;
        continue;
      }
      // Otherwise the stored state must come from a later op that was in flight at the kill.
      const later = (issued.get(key) ?? []).filter((o) => o.counter > a.counter && o.value === stored);
      t.true(later.length > 0, `iteration ${it}: ${key} acknowledged as op ${a.counter} (${a.value?.slice(0, 12) ?? 'deleted'}) but holds ${stored?.slice(0, 12) ?? 'nothing'}`);
      checked++;
    }
    // Leave it as a crash would: no clean shutdown, so the next child cold-starts too.
    await ns.store.abandon();
    await ns.writeLog.abandon();
  }
  t.log(`checked ${checked} acknowledged keys over ${ITERATIONS} kill -9 cycles`);
});

test('blocks written faster than they are flushed stay readable (a loop that never yields)', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const ns = await openNamespace(nsConfig(dir, { 'write-block-size': 65536, 'read-cache-blocks': 1 }));
  const v = 'q'.repeat(1000);
  for (let i = 0; i < 5000; i++) t.is((await ns.execute(put(`f${i}`, { v: str(v) }))).resultCode, ResultCode.OK);
  let ok = 0;
  for (let i = 0; i < 5000; i++) if (binsOf((await ns.execute(get(`f${i}`))).bins).v === v) ok++;
  t.is(ok, 5000);
  t.is(ns.store.stats().checksumErrors, 0);
  await ns.close();
});
