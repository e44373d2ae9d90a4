/**
 * Replaying a site end to end, as a user would with the CLI: a destination whose data directory
 * was deleted is rebuilt (1) by `ferry replay --beginning` from the topic, (2) by a re-ship from
 * the source (`ferry replay --node`), each ending with `ferry verify` EQUAL; and (3) a wiped
 * destination rolled forward from a point in time with `ferry replay --from-time` against the
 * embedded broker: it receives exactly the changes made after that time.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryClient } from '../../store/client/client.js';
import { FerryProcess, freePort, getJson, waitFor } from '../helpers/procs.js';
import { runCli } from '../ops/helpers.js';
import type { ReceiverStats } from '../../receiver/receiver.js';

const KEYS = 300;

test.serial('a wiped destination is rebuilt from the topic and by a re-ship, and rolled forward from a time', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-replay-'));
  const ports = { broker: await freePort(), a: await freePort(), b: await freePort(), receiver: await freePort() };
  const brokers = `127.0.0.1:${ports.broker}`;
  const A = `127.0.0.1:${ports.a}`;
  const B = `127.0.0.1:${ports.b}`;
  writeFileSync(join(dir, 'a.json'), JSON.stringify({
    namespaces: [{ name: 'test', filesize: 64 * 1024 * 1024, 'write-block-size': 262144 }],
    xdr: { site: 'A', destinations: [{ name: 'B', brokers: [brokers], namespaces: ['test'], 'kafka-partitions': 4, 'checkpoint-interval-ms': 200 }] },
  }));
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ namespaces: [{ name: 'test', filesize: 64 * 1024 * 1024, 'write-block-size': 262144, fenced: true }] }));
  writeFileSync(join(dir, 'r.json'), JSON.stringify({ brokers: [brokers], topics: ['ferry.A.test'], destination: [B], 'metrics-port': ports.receiver, 'group-id': 'rb' }));
  const bData = join(dir, 'b');
  const broker = new FerryProcess('broker', ['broker', '--data', join(dir, 'broker'), '--port', String(ports.broker)], /listening/);
  const a = new FerryProcess('node A', ['node', '--config', join(dir, 'a.json'), '--data', join(dir, 'a'), '--port', String(ports.a)], /ferry node listening/);
  const b = new FerryProcess('node B', ['node', '--config', join(dir, 'b.json'), '--data', bData, '--port', String(ports.b)], /ferry node listening/);
  const receiver = new FerryProcess('receiver', ['receiver', '--config', join(dir, 'r.json')], /ferry receiver ready/);
  const clients: FerryClient[] = [];
  t.teardown(async () => {
    for (const c of clients) c.close();
    await Promise.all([receiver.stop('SIGKILL'), a.stop('SIGKILL'), b.stop('SIGKILL'), broker.stop('SIGKILL')]);
    rmSync(dir, { recursive: true, force: true });
  });
  await broker.start();
  await Promise.all([a.start(), b.start()]);
  await receiver.start();
  const ca = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.a }], tendIntervalMs: 0 });
  clients.push(ca);
  const stats = () => getJson<ReceiverStats>(`http://127.0.0.1:${ports.receiver}/stats`);
  const shippedAll = async () => {
    const x = JSON.parse(await ca.infoValue('xdr-stats')) as { streams: Array<{ recordsBehind: number; recoveringPartitions: number }> };
    return x.streams.every((s) => s.recordsBehind === 0 && s.recoveringPartitions === 0);
  };
  const appliedAll = async () => {
    const since = Date.now();
    await waitFor(shippedAll, 60_000, 'A to ship everything');
    await waitFor(async () => {
      const s = await stats();
      return s.consumerLag === 0 && s.lagMeasuredAtMs > since;
    }, 60_000, 'the receiver to apply everything');
  };
  const verify = async (what: string) => {
    const v = await runCli(['verify', '--a', A, '--b', B, '--namespace', 'test']);
    t.is(v.code, 0, `${what}: ferry verify\n${v.stdout}${v.stderr}`);
    t.regex(v.stdout, /EQUAL/, what);
  };
  const wipeB = async () => {
    await b.stop('SIGKILL');
    rmSync(bData, { recursive: true, force: true });
    await b.start();
  };
  const bKeys = async (prefix: string, n: number): Promise<number> => {
    const cb = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports.b }], tendIntervalMs: 0 });
    try {
      let found = 0;
      for (let i = 0; i < n; i++) if (await cb.get({ namespace: 'test', set: 'r', key: `${prefix}${i}` })) found++;
      return found;
    } finally {
      cb.close();
    }
  };

  // Some history: puts, updates, deletes.
  for (let i = 0; i < KEYS; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => ca.put({ namespace: 'test', set: 'r', key: `k${i + j}` }, { i: i + j, s: `v${i + j}` })));
  for (let i = 0; i < KEYS; i += 7) await ca.put({ namespace: 'test', set: 'r', key: `k${i}` }, { i: -i, s: 'updated' });
  for (let i = 3; i < KEYS; i += 11) await ca.remove({ namespace: 'test', set: 'r', key: `k${i}` });
  await appliedAll();
  await verify('replicated');

  // 1. B's data directory deleted; rebuilt from the topic by rewinding the receiver group.
  await receiver.stop('SIGTERM');
  await wipeB();
  t.is(await bKeys('k', KEYS), 0, 'B starts empty');
  const rw = await runCli(['replay', '--brokers', brokers, '--group', 'rb', '--topic', 'ferry.A.test', '--beginning']);
  t.is(rw.code, 0, rw.stdout + rw.stderr);
  t.regex(rw.stdout, /->/, 'prints old -> new offsets per partition');
  await receiver.start();
  await appliedAll();
  await verify('rebuilt from the topic');

  // 2. Wiped again; rebuilt by a re-ship from the source (the receiver keeps running).
  await wipeB();
  const rs = await runCli(['replay', '--node', A, '--dc', 'B', '--namespace', 'test', '--from-time', '0']);
  t.is(rs.code, 0, rs.stdout + rs.stderr);
  t.regex(rs.stdout + rs.stderr, /re-ship/, 'shows the re-ship progress and result');
  await appliedAll();
  await verify('rebuilt by a re-ship');

  // 3. Roll a wiped B forward from a point in time: only what changed after it arrives.
  await new Promise((r) => setTimeout(r, 100));
  const from = Date.now();
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 40; i++) await ca.put({ namespace: 'test', set: 'r', key: `f${i}` }, { i });
  await appliedAll();
  await receiver.stop('SIGTERM');
  await wipeB();
  const ft = await runCli(['replay', '--brokers', brokers, '--group', 'rb', '--topic', 'ferry.A.test', '--from-time', new Date(from).toISOString()]);
  t.is(ft.code, 0, ft.stdout + ft.stderr);
  await receiver.start();
  await appliedAll();
  t.is(await bKeys('f', 40), 40, 'every change after the time is applied');
  t.is(await bKeys('k', KEYS), 0, 'nothing from before the time is replayed');
});
