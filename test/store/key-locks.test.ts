/**
 * KeyLocks (store/transaction/key-locks.ts): commands on one key run one at a time in arrival
 * order, a rejected one releases the lock for the next, and a key has a queue exactly while
 * something holds or waits for it.
 */
import test from 'ava';
import { KEY_BUSY, KeyLocks } from '../../store/transaction/key-locks.js';
import { systemClock } from '../../store/runtime/index.js';

const key = Buffer.alloc(20, 7);
const other = Buffer.alloc(20, 8);

function gate(): { p: Promise<void>; open: () => void; fail: () => void } {
  let open!: () => void;
  let fail!: () => void;
  const p = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = () => reject(new Error('failed on purpose'));
  });
  return { p, open, fail };
}

test('commands on one key run in arrival order, one at a time; a rejected one lets the next run; the queue goes when the last is done', async (t) => {
  const locks = new KeyLocks(() => 10, systemClock);
  const log: string[] = [];
  const g1 = gate();
  const g2 = gate();
  const first = locks.run(key, () => {
    log.push('1 start');
    return g1.p.then(() => void log.push('1 end'));
  });
  const second = locks.run(key, () => {
    log.push('2 start');
    return g2.p.then(() => void log.push('2 end'));
  });
  const third = locks.run(key, () => {
    log.push('3 start');
    return 3;
  });
  t.is(locks.run(other, () => 'free'), 'free', 'another key runs at once, synchronously');
  t.true(locks.isLocked(key));
  t.deepEqual(log, ['1 start']);
  g1.fail();
  await t.throwsAsync(first as Promise<void>, { message: 'failed on purpose' });
  await new Promise((r) => setImmediate(r));
  t.deepEqual(log, ['1 start', '2 start'], 'the next command ran after the failed one, the third still waits');
  g2.open();
  await second;
  t.is(await third, 3);
  t.deepEqual(log, ['1 start', '2 start', '2 end', '3 start']);
  t.false(locks.isLocked(key));
  t.is(locks.size, 0);
  await locks.drain();
});

test('past the pending limit a command is refused with KEY_BUSY; drain waits for queued commands, failed ones included', async (t) => {
  const locks = new KeyLocks(() => 2, systemClock);
  const g = gate();
  const a = locks.run(key, () => g.p);
  const b = locks.run(key, () => Promise.reject(new Error('b failed')));
  t.is(locks.run(key, () => 'c'), KEY_BUSY);
  (a as Promise<void>).catch(() => {});
  (b as Promise<void>).catch(() => {});
  let drained = false;
  const d = locks.drain().then(() => void (drained = true));
  await new Promise((r) => setImmediate(r));
  t.false(drained);
  g.open();
  await d;
  await t.throwsAsync(b as Promise<void>, { message: 'b failed' });
  t.is(locks.size, 0);
});
