/**
 * Remembered peers (store/cluster/known-peers.ts): the file's codec and its bad input, and with
 * real processes the case it exists for: the first node of a cluster, started with no seed,
 * restarted with the same command line while the other went on taking writes. It must rejoin
 * (not come back as a one-node cluster serving its old copies) and every write acknowledged
 * while it was away must read back through it.
 */
import test from 'ava';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FerryProcess, freePort, waitFor } from '../helpers/procs.js';
import { parseKv, withNode } from '../../ops/util.js';
import { KnownPeers, KnownPeersError, mergeSeeds } from '../../store/cluster/known-peers.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');
const ns = 'test';
const set = 'kp';
const WAIT_MS = 30_000;
const dirs: string[] = [];
const procs: FerryProcess[] = [];

const tmp = (): string => {
  const d = mkdtempSync(path.join(tmpdir(), 'ferry-kp-'));
  dirs.push(d);
  return d;
};

test.after.always(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('the peers file round-trips, is rewritten only on change, and ignores another cluster', (t) => {
  const dir = tmp();
  const kp = new KnownPeers(dir, 'c1');
  t.deepEqual(kp.load(), [], 'no file: no peers');
  t.true(kp.save([{ nodeId: 'B', heartbeat: { host: '10.0.0.2', port: 3002 } }, { nodeId: 'A', heartbeat: { host: '10.0.0.1', port: 3002 } }]));
  t.false(kp.save([{ nodeId: 'A', heartbeat: { host: '10.0.0.1', port: 3002 } }, { nodeId: 'B', heartbeat: { host: '10.0.0.2', port: 3002 } }]), 'same peers: not rewritten');
  t.false(kp.save([]), 'alone: the list is kept');
  t.deepEqual(new KnownPeers(dir, 'c1').load(), [
    { host: '10.0.0.1', port: 3002 },
    { host: '10.0.0.2', port: 3002 },
  ]);
  t.deepEqual(new KnownPeers(dir, 'other').load(), [], "another cluster's peers are not used");
});

test('a malformed peers file is a clear error, not a crash', (t) => {
  const dir = tmp();
  const kp = new KnownPeers(dir, 'c1');
  writeFileSync(kp.path, '{not json');
  t.throws(() => kp.load(), { instanceOf: KnownPeersError, message: /cannot read/ });
  writeFileSync(kp.path, JSON.stringify({ v: 1, clusterName: 'c1', peers: [{ nodeId: 'A', heartbeat: { host: 'h', port: 70000 } }] }));
  t.throws(() => kp.load(), { instanceOf: KnownPeersError, message: /peers\[0\]\.heartbeat/ });
  writeFileSync(kp.path, JSON.stringify({ v: 9 }));
  t.throws(() => kp.load(), { instanceOf: KnownPeersError, message: /not a peers file/ });
});

test('remembered seeds come after the configured ones, without duplicates or this node', (t) => {
  const a = { host: 'a', port: 1 };
  const b = { host: 'b', port: 1 };
  const self = { host: 's', port: 1 };
  t.deepEqual(mergeSeeds([a], [b, a, self, b], [self]), [a, b]);
  t.deepEqual(mergeSeeds([], [], [self]), []);
});

test('the first node, restarted with no seed, rejoins its cluster and serves the writes made while it was away', async (t) => {
  t.timeout(4 * WAIT_MS);
  const info = (port: number, cmd: string): Promise<string> => withNode({ host: '127.0.0.1', port }, 5000, (n) => n.info(cmd));
  const size = async (port: number): Promise<string | undefined> => parseKv(await info(port, 'statistics')).get('cluster_size');
  const start = async (args: string[]): Promise<FerryProcess> => {
    const p = new FerryProcess(`node ${args[2]}`, args, /ferry node heartbeat on .*\n[^]*ferry node listening on /);
    procs.push(p);
    await p.start();
    return p;
  };
  const [aPort, aHb, bPort, bHb] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const aDir = tmp();
  const aArgs = ['node', '--port', String(aPort), '--heartbeat-port', String(aHb), '--data', aDir];
  let a = await start(aArgs);
  await start(['node', '--port', String(bPort), '--heartbeat-port', String(bHb), '--data', tmp(), '--seed', `127.0.0.1:${aHb}`]);
  await waitFor(async () => (await size(aPort)) === '2' && !/ERROR/i.test(await info(aPort, 'cluster-stable:size=2')), WAIT_MS, 'a cluster of two');
  const remembered = JSON.parse(readFileSync(path.join(aDir, 'cluster-peers.json'), 'utf8')) as { peers: Array<{ heartbeat: { port: number } }> };
  t.deepEqual(remembered.peers.map((p) => p.heartbeat.port), [bHb], 'the first node remembers its peer');
  const client = await Aerospike.connect({ hosts: [{ addr: '127.0.0.1', port: bPort }], log: { level: Aerospike.log.OFF } });
  try {
    for (let i = 0; i < 200; i++) await client.put(new Aerospike.Key(ns, set, `before${i}`), { v: 1 });
    await a.stop('SIGTERM');
    await waitFor(async () => (await size(bPort)) === '1', WAIT_MS, 'the second node alone');
    // Written while the first node is away: its copies miss them.
    // The client's map still names the stopped node until its next tend: retried until then.
    for (let i = 0; i < 200; i++) {
      const key = new Aerospike.Key(ns, set, `before${i}`);
      await waitFor(() => client.put(key, { v: 2 }).then(() => true, () => false), WAIT_MS, `write ${i} while the first node is away`);
    }
    a = await start(aArgs);
    t.regex(a.output, /seeds from the last membership/, 'it says where its seeds came from');
    t.is(await size(aPort), '2', 'it is back in the cluster when it reports started, not a cluster of its own');
    // Through the returning node directly (a client that only knows it): no stale value.
    const direct = await Aerospike.connect({ hosts: [{ addr: '127.0.0.1', port: aPort }], log: { level: Aerospike.log.OFF } });
    try {
      const stale: string[] = [];
      // The client maps a partition once it has tended the node that masters it: the peer it
      // learns from the returning node is tended on its next round, so until then a read of one
      // of its partitions fails in the client with 'Node not found for partition' (code -8,
      // nothing sent). Retried until the map is complete; any other error fails the test.
      const read = async (key: Any): Promise<Any> => {
        const end = Date.now() + WAIT_MS;
        for (;;) {
          try {
            return await direct.get(key);
          } catch (e) {
            if ((e as Any)?.code !== Aerospike.status.ERR_INVALID_NODE || Date.now() > end) throw e;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      };
      for (let i = 0; i < 200; i++) {
        const r = await read(new Aerospike.Key(ns, set, `before${i}`));
        if (r.bins.v !== 2) stale.push(`before${i}=${String(r.bins.v)}`);
      }
      t.deepEqual(stale, [], 'every write made while it was away reads back through it');
    } finally {
      await direct.close();
    }
  } finally {
    await client.close();
  }
});
