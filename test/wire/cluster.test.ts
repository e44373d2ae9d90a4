/**
 * The multi-node shape of the info answers: two real store nodes whose ClusterViews split the
 * partitions even/odd and list each other as peers. Clients seeded with one node must find both
 * and route every key, batch row and scan partition to its owner.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { startEvenOddCluster } from './cluster-fixture.js';
import { computeDigest, partitionOf } from '../../store/digest.js';
import { FerryClient } from '../../store/client/client.js';
import { decodeMsg, emptyHeader, encodeMsgFrame, field } from '../../store/wire/message.js';
import { FrameParser } from '../../store/wire/proto.js';
import { ResultCode } from '../../store/types.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');
const START_TIMEOUT_MS = 60_000;
const ns = 'test';
const parity = (key: string): number => partitionOf(computeDigest('cl', key)) % 2;

test('the official client discovers both nodes from one seed and routes keys to owners', async (t) => {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./cluster-fixture.ts', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  );
  const ports = await new Promise<number[]>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`cluster fixture did not start:\n${out}`)), START_TIMEOUT_MS);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /cluster listening (\d+) (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve([Number(m[1]), Number(m[2])]);
      }
    });
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => reject(new Error(`fixture exited ${code}:\n${out}`)));
  });
  const client = await Aerospike.connect({ hosts: [{ addr: '127.0.0.1', port: ports[0] }], log: { level: Aerospike.log.OFF } });
  try {
    t.is(client.getNodes().length, 2);
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    for (const k of keys) await client.put(new Aerospike.Key(ns, 'cl', k), { k });
    // Each node holds exactly the keys of its parity.
    for (const [i, port] of ports.entries()) {
      const info: string = await client.info(`sets/${ns}/cl`, { addr: '127.0.0.1', port });
      const objects = Number(/objects=(\d+)/.exec(info)?.[1]);
      t.is(objects, keys.filter((k) => parity(k) === i).length, `node ${i}`);
    }
    const seen: Any[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = client.scan(ns, 'cl').foreach();
      s.on('data', (r: Any) => seen.push(r.bins.k));
      s.on('error', reject);
      s.on('end', () => resolve());
    });
    t.deepEqual(seen.sort(), [...keys].sort());
    const batch = await client.batchRead(keys.map((k) => ({ key: new Aerospike.Key(ns, 'cl', k), readAllBins: true })));
    t.deepEqual(batch.map((r: Any) => r.record.bins.k), keys);
  } finally {
    await client.close();
  }
});

test("ferry's client is partition-aware, and a node refuses partitions it does not own", async (t) => {
  const cluster = await startEvenOddCluster();
  t.teardown(() => cluster.close());
  const b = cluster.members[1];
  const c = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: b!.server.port }], tendIntervalMs: 0 });
  t.teardown(() => c.close());
  t.is(c.nodeIds().length, 2);
  for (let i = 0; i < 40; i++) await c.put({ namespace: ns, set: 'cl', key: `f${i}` }, { i });
  for (let i = 0; i < 40; i++) {
    const d = computeDigest('cl', `f${i}`);
    const owner = cluster.members[parity(`f${i}`)]!;
    const other = cluster.members[1 - parity(`f${i}`)]!;
    t.truthy(owner.node.namespace(ns)!.readVersion(d));
    t.falsy(other.node.namespace(ns)!.readVersion(d));
  }
  let n = 0;
  for await (const r of c.scan(ns, { set: 'cl' })) if (typeof r.bins['i'] === 'number') n++;
  t.is(n, 40);
  const batch = await c.batch(Array.from({ length: 40 }, (_, i) => ({ kind: 'read' as const, key: { namespace: ns, set: 'cl', key: `f${i}` } })));
  t.deepEqual(batch.map((r) => r.record?.bins['i']), Array.from({ length: 40 }, (_, i) => i));

  const key = 'f1';
  const notOwner = cluster.members[1 - parity(key)]!;
  const frame = encodeMsgFrame({ ...emptyHeader(), info1: 3 }, [field(0, ns), field(1, 'cl'), field(4, computeDigest('cl', key))]);
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: notOwner.server.port }, () => s.write(frame));
    const p = new FrameParser();
    const timer = setTimeout(() => reject(new Error('no reply')), 5000);
    s.on('data', (chunk: Buffer) => {
      const f = p.push(chunk)[0];
      if (f) {
        clearTimeout(timer);
        s.destroy();
        resolve(f.body);
      }
    });
    s.on('error', reject);
  });
  t.is(decodeMsg(reply).resultCode, ResultCode.UNAVAILABLE);
  t.true(notOwner.server.stats()['not_owner']! >= 1);
});
