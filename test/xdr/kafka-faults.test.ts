/**
 * Kafka faults the shipper and the receiver must ride through, as real processes on the
 * embedded broker: a broker whose message.max.bytes is smaller than a full batch (and than one
 * record), and a broker killed with -9 and restarted on the same port and data under a running
 * receiver (its group coordinator forgets every member).
 */
import { join } from 'node:path';
import test from 'ava';
import type { FerryClient } from '../../store/client/client.js';
import { waitFor } from '../helpers/procs.js';
import { BROKER_KINDS, embeddedBroker, kafkaPerFile } from '../helpers/kafka.js';
import { startSites, type Sites } from './sites.js';
import { XdrConfigError, parseXdrConfig } from '../../shipper/config.js';

async function writeKeys(c: FerryClient, from: number, n: number, valueBytes: number): Promise<void> {
  const pending: Promise<unknown>[] = [];
  for (let i = from; i < from + n; i++) {
    pending.push(c.put({ namespace: 'test', set: 'demo', key: `k${i}` }, { v: `${i}:`.padEnd(valueBytes, 'x'), n: i }));
    if (pending.length >= 32) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

async function missingAtB(s: Sites, from: number, n: number): Promise<string[]> {
  const missing: string[] = [];
  for (let i = from; i < from + n; i++) {
    const r = await s.clientB.get({ namespace: 'test', set: 'demo', key: `k${i}` });
    if (r === null || r.bins.n !== i) missing.push(`k${i}`);
  }
  return missing;
}

/** Apache Kafka of this file: message.max.bytes 64 KiB, as the embedded broker's below. */
const kafka = kafkaPerFile(test, { properties: { 'message.max.bytes': 65536 } });

for (const kind of BROKER_KINDS) test.serial(`[${kind}] a broker with a small message.max.bytes: batches are split to fit, a record too large alone is reported and skipped, the rest converges`, async (t) => {
  const s = await startSites((dir) => (kind === 'embedded' ? embeddedBroker(dir, ['--message-max-bytes', '65536']) : kafka.broker(kind, dir)));
  t.teardown(() => s.close());
  // ~400 KB in 4 KB records: far above 64 KiB per produce request with the default byte bound.
  await writeKeys(s.clientA, 0, 100, 4000);
  await s.clientA.put({ namespace: 'test', set: 'demo', key: 'big' }, { v: 'b'.repeat(100_000) });
  await writeKeys(s.clientA, 100, 20, 100);
  await s.converged(60_000).catch(async (err: unknown) => {
    t.log(JSON.stringify(await s.xdrStats()), s.a.output.slice(-3000), s.receiver.output.slice(-2000));
    throw err;
  });
  t.deepEqual(await missingAtB(s, 0, 120), []);
  t.is(await s.clientB.get({ namespace: 'test', set: 'demo', key: 'big' }), null, 'the record too large for the destination is not applied');
  const stream = (await s.xdrStats()).streams[0] as unknown as { tooLarge: number; lastError: string };
  t.is(stream.tooLarge, 1);
  t.regex(stream.lastError, /too large/i);
  t.true(s.a.running);
});

test.serial('the broker killed with -9 and restarted under a running receiver: the receiver rejoins, stays up and B converges', async (t) => {
  const s = await startSites((dir) => embeddedBroker(dir));
  t.teardown(() => s.close());
  await writeKeys(s.clientA, 0, 300, 200);
  await s.converged(60_000);
  // Kill the broker while the receiver is in the middle of consuming (a steady stream of writes).
  let written = 300;
  let writing = true;
  let writeError: unknown;
  const writer = (async () => {
    while (writing) {
      await writeKeys(s.clientA, written, 50, 200);
      written += 50;
    }
  })().catch((err: unknown) => {
    writeError = err;
  });
  await waitFor(async () => (await s.receiverStats()).applied > 400, 30_000, 'the receiver to apply the stream');
  await s.broker.stop('SIGKILL');
  await new Promise((r) => setTimeout(r, 1000));
  await s.broker.start();
  const before = (await s.receiverStats()).applied;
  await waitFor(async () => (await s.receiverStats()).applied > before + 200, 60_000, 'the receiver to apply again after the broker restart').catch((err: unknown) => {
    t.log(`A running ${s.a.running}, receiver running ${s.receiver.running}, write error ${String(writeError)}`, s.receiver.output.slice(-2000));
    throw err;
  });
  writing = false;
  await writer;
  t.is(writeError, undefined, `writes to A failed: ${String(writeError)}; A running ${s.a.running}`);
  await s.converged(90_000);
  // The restarted broker forgot the group's members: the consumer rejoins instead of crashing.
  t.notRegex(s.receiver.output, /consumer crashed/, s.receiver.output.split('\n').filter((l) => /restart|crash|coordinator/i.test(l)).slice(-5).join('\n'));
  t.deepEqual(await missingAtB(s, 0, written), []);
  t.true(s.receiver.running, `the receiver exited: ${JSON.stringify(s.receiver.exit)}\n${s.receiver.output.slice(-3000)}`);
});

test('batch-max-bytes is validated, named in the error, and defaults under 1 MiB', (t) => {
  const dest = { name: 'B', brokers: ['127.0.0.1:9092'], namespaces: ['test'] };
  t.is(parseXdrConfig({ site: 'A', destinations: [dest] }).destinations[0]!.batchMaxBytes, 900_000);
  t.is(parseXdrConfig({ site: 'A', destinations: [{ ...dest, 'batch-max-bytes': 65536 }] }).destinations[0]!.batchMaxBytes, 65536);
  for (const bad of [100, 1.5, '1MB', -1]) {
    const err = t.throws(() => parseXdrConfig({ site: 'A', destinations: [{ ...dest, 'batch-max-bytes': bad }] }), { instanceOf: XdrConfigError });
    t.regex(err?.message ?? '', /xdr\.destinations\[0\]\.batch-max-bytes/);
  }
});
