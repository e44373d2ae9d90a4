import test from 'ava';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { loadNodeConfig } from '../../store/config.js';
import { FerryNode } from '../../store/node.js';
import { NodeStartError, NodeStartStep } from '../../store/assembly/index.js';
import type { NodeExtension, StoreNode } from '../../store/api.js';
import { FerryClient } from '../../store/client/client.js';
import { computeDigest } from '../../store/digest.js';
import { ResultCode } from '../../store/types.js';
import { put, str, tempDir } from '../helpers/store.js';

function config(data: string, port = 0) {
  return loadNodeConfig({
    env: {},
    overrides: { data, 'service.port': port, namespaces: [{ name: 'test', 'storage-engine': 'device', filesize: 16 * 1024 * 1024, 'write-log-entries': 4096 }] },
  });
}

/** An extension that writes a record when it stops, as the shipper writes its checkpoints. */
function checkpointingExtension(events: string[]): NodeExtension {
  let node: StoreNode | undefined;
  return {
    name: 'checkpointer',
    start: async (n) => {
      node = n;
      events.push(`start:${n.namespaceNames().join(',')}`);
    },
    stop: async () => {
      const r = await node!.namespace('test')!.execute(put('checkpoint', { at: str('stop') }));
      events.push(`stop:${r.resultCode}`);
    },
    stats: () => ({ events: events.length }),
  };
}

test('FerryNode.start serves the wire port with extensions started; stop stops them before the store closes', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const events: string[] = [];
  const running = await FerryNode.start({ config: config(dir), extensions: [checkpointingExtension(events)] });
  t.deepEqual(events, ['start:test']);
  const client = await FerryClient.connect({ hosts: [{ host: running.wire.host, port: running.wire.port }], tendIntervalMs: 0 });
  await client.put({ namespace: 'test', set: 'demo', key: 'k' }, { v: 'hello' });
  t.deepEqual((await client.get({ namespace: 'test', set: 'demo', key: 'k' }))?.bins, { v: 'hello' });
  client.close();
  t.deepEqual(running.stats()['checkpointer'], { events: 1 });
  t.deepEqual(running.metricSamples().find((s) => s.name === 'ferry_ns_objects')?.value, 1);
  await running.stop();
  await running.stop(); // idempotent
  t.deepEqual(events, ['start:test', `stop:${ResultCode.OK}`], 'the extension could still write while stopping');
  // Restart on the same data: the lock was released and what the extension wrote at stop is there.
  const again = await FerryNode.start({ config: config(dir) });
  t.teardown(() => again.stop());
  t.is(again.node.namespace('test')!.readVersion(computeDigest('demo', 'checkpoint'))?.generation, 1);
  t.is(again.openReports()['test']?.mode, 'warm', 'a clean stop leaves a warm-restart snapshot');
});

test('a failed start step says which, and undoes the steps before it', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  // The service port is taken: LISTEN, and the store is closed again (its lock released).
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const taken = (blocker.address() as { port: number }).port;
  const listen = await t.throwsAsync(FerryNode.start({ config: config(dir, taken) }), { instanceOf: NodeStartError });
  t.is(listen?.step, NodeStartStep.LISTEN);
  t.false(existsSync(join(dir, 'node.lock')), 'the store was closed again');
  await new Promise<void>((r) => blocker.close(() => r()));
  // An extension refuses to start: EXTENSION; the port and the store are released.
  const refusing: NodeExtension = { name: 'refuser', start: () => Promise.reject(new Error('no such namespace')), stop: async () => undefined };
  const ext = await t.throwsAsync(FerryNode.start({ config: config(dir, taken), extensions: [refusing] }), { instanceOf: NodeStartError });
  t.is(ext?.step, NodeStartStep.EXTENSION);
  t.regex(ext?.message ?? '', /refuser: no such namespace/);
  t.false(existsSync(join(dir, 'node.lock')));
  // The store cannot open (its data directory is a file): STORE.
  const file = join(dir, 'not-a-directory');
  writeFileSync(file, 'x');
  const store = await t.throwsAsync(FerryNode.start({ config: config(file) }), { instanceOf: NodeStartError });
  t.is(store?.step, NodeStartStep.STORE);
  // Nothing was left holding the port or the lock.
  const ok = await FerryNode.start({ config: config(dir, taken) });
  await ok.stop();
});
