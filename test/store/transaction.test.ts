import test from 'ava';
import { openNamespace } from '../../store/node.js';
import { computeDigest } from '../../store/digest.js';
import { ResultCode, type RecordVersion } from '../../store/types.js';
import type { WrittenVersion } from '../../store/transaction/index.js';
import { get, int, nsConfig, put, str, tempDir } from '../helpers/store.js';

async function withNs(t: import('ava').ExecutionContext, keys: Record<string, unknown>) {
  const { dir, cleanup } = tempDir();
  const ns = await openNamespace(nsConfig(dir, keys));
  t.teardown(async () => {
    await ns.close();
    cleanup();
  });
  return ns;
}

const T = 1_790_000_000_000;
const version = (key: string, generation: number): RecordVersion => ({
  namespace: 'test',
  set: 'demo',
  digest: computeDigest('demo', key),
  generation,
  lutMs: T + generation,
  voidTimeS: 0,
  tombstone: false,
  bins: [{ name: 'g', ...int(generation) }],
});

test('replicated applies queue on the same record lock and limit as client commands (KEY_BUSY)', async (t) => {
  const ns = await withNs(t, { 'commit-to-device': true, 'transaction-pending-limit': 3 });
  // A client write holds the lock while it waits for its group commit; applies queue behind it.
  const first = ns.execute(put('hot', { s: str('client') }));
  const applies = Array.from({ length: 20 }, (_, i) => ns.applyReplicated(version('hot', 100 + i), 'generation'));
  const results = await Promise.all(applies);
  t.is((await first).resultCode, ResultCode.OK);
  const codes = results.map((r) => r.resultCode);
  // The limit counts the holder: the client write plus two applies.
  t.deepEqual(codes.slice(0, 2), [ResultCode.OK, ResultCode.OK], 'the queued applies ran, in order, each winning over the last');
  t.is(codes.filter((c) => c === ResultCode.KEY_BUSY).length, 18, 'every other apply was refused at once');
  t.is(ns.counters.fail_key_busy, 18);
  t.is(ns.readVersion(computeDigest('demo', 'hot'))?.generation, 101, 'the last queued apply is the stored version');
  // The lock is free again: a new apply runs at once.
  t.true((await ns.applyReplicated(version('hot', 200), 'generation')).applied);
});

test('the replicate step runs after the version is stored and before the answer, with the key still locked', async (t) => {
  const ns = await withNs(t, { 'storage-engine': 'memory' });
  const seen: WrittenVersion[] = [];
  let release!: () => void;
  ns.replicator = {
    replicate: (w) => {
      seen.push(w);
      return new Promise<void>((r) => (release = r));
    },
  };
  let acked = false;
  const write = ns.execute(put('k', { a: int(1) })).then((r) => ((acked = true), r));
  // Step 3 happened synchronously: the version is stored and logged; step 4 has it.
  t.is(seen.length, 1);
  t.is(seen[0]!.record.generation, 1);
  t.is(ns.readVersion(computeDigest('demo', 'k'))?.generation, 1);
  let readDone = false;
  const read = ns.execute(get('k')).then((r) => ((readDone = true), r));
  await new Promise((r) => setImmediate(r));
  t.false(acked, 'no answer before the replicas answered');
  t.false(readDone, 'a later command on the key waits for the lock');
  release();
  t.is((await write).resultCode, ResultCode.OK);
  t.is((await read).generation, 1);
  // A replicate failure fails the transaction (the client is told it may not be replicated).
  ns.replicator = { replicate: () => Promise.reject(new Error('replica gone')) };
  t.is((await ns.execute(put('k', { a: int(2) }))).resultCode, ResultCode.SERVER_ERROR);
  ns.replicator = undefined;
  t.is((await ns.execute(put('k', { a: int(3) }))).resultCode, ResultCode.OK, 'the failed one left the lock free');
});
