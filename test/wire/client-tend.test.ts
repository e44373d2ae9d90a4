/**
 * ferry's smart client keeps its node list true: a node that stops answering tends is dropped
 * after NODE_TEND_FAILURES_MAX rounds (its partitions stop routing to it), and is added back once
 * it answers again while a live peer still lists it. Two in-process nodes split the partitions
 * even/odd and list each other as peers; tending is driven by hand (tendIntervalMs 0).
 */
import test from 'ava';
import { FerryClient, NODE_TEND_FAILURES_MAX } from '../../store/client/client.js';
import { loadNodeConfig } from '../../store/config.js';
import { computeDigest, partitionOf } from '../../store/digest.js';
import { openStoreNode, type FerryNode } from '../../store/node.js';
import type { Peer } from '../../store/wire/info.js';
import { startWireServer, type WireServer } from '../../store/wire/server.js';
import { AerospikeError } from '../../store/wire/errors.js';
import { tempDir } from '../helpers/store.js';
import { evenOddView } from './cluster-fixture.js';

test('a node that stops answering is dropped after the tend failures allowed, and comes back when it answers again', async (t) => {
  const nodes: FerryNode[] = [];
  const servers: Array<WireServer | undefined> = [];
  const ports: number[] = [];
  const views = [0, 1].map((i) => evenOddView(i, (): Peer => ({ nodeId: nodes[1 - i]!.nodeId, addresses: [{ host: '127.0.0.1', port: ports[1 - i]! }] })));
  for (const i of [0, 1]) {
    const { dir, cleanup } = tempDir('ferry-client-tend-');
    t.teardown(cleanup);
    const node = await openStoreNode(loadNodeConfig({ env: { FERRY_NS_STORAGE_ENGINE: 'memory' }, overrides: { data: dir, 'node-id': `${i === 0 ? 'A0' : 'A1'}` } }));
    nodes.push(node);
    const server = await startWireServer(node, { port: 0, view: views[i]! });
    servers.push(server);
    ports.push(server.port);
  }
  t.teardown(async () => {
    for (const s of servers) await s?.close();
    for (const n of nodes) await n.close();
  });
  const client = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: ports[0]! }], tendIntervalMs: 0, timeoutMs: 2000 });
  t.teardown(() => client.close());
  t.deepEqual(client.nodeIds().sort(), ['A0', 'A1']);
  t.is(client.masterOf('test', 1), 'A1');
  t.is(client.masterOf('test', 2), 'A0');

  await servers[1]!.close();
  servers[1] = undefined;
  for (let round = 1; round < NODE_TEND_FAILURES_MAX; round++) {
    await client.tend();
    t.true(client.nodeIds().includes('A1'), `still kept after ${round} failed round(s)`);
  }
  await client.tend();
  t.deepEqual(client.nodeIds(), ['A0'], 'dropped after the last failure allowed');
  t.is(client.masterOf('test', 1), undefined, 'its partitions no longer route to it');
  t.is(client.masterOf('test', 2), 'A0');
  const err = await t.throwsAsync(client.get({ namespace: 'test', set: 's', key: keyInOddPartition() }));
  t.true(err instanceof AerospikeError);

  servers[1] = await startWireServer(nodes[1]!, { port: ports[1]!, view: views[1]! });
  await client.tend();
  t.deepEqual(client.nodeIds().sort(), ['A0', 'A1'], 'added back: its live peer still lists it');
  t.is(client.masterOf('test', 1), 'A1');
});

test('the last node is never dropped: it is the way back into the cluster', async (t) => {
  const { dir, cleanup } = tempDir('ferry-client-tend-');
  t.teardown(cleanup);
  const node = await openStoreNode(loadNodeConfig({ env: { FERRY_NS_STORAGE_ENGINE: 'memory' }, overrides: { data: dir } }));
  let server: WireServer | undefined = await startWireServer(node, { port: 0 });
  const port = server.port;
  t.teardown(async () => {
    await server?.close();
    await node.close();
  });
  const client = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port }], tendIntervalMs: 0, timeoutMs: 2000 });
  t.teardown(() => client.close());
  await server.close();
  server = undefined;
  for (let round = 0; round < NODE_TEND_FAILURES_MAX + 1; round++) await client.tend();
  t.is(client.nodeIds().length, 1);
  server = await startWireServer(node, { port });
  await client.put({ namespace: 'test', set: 's', key: 'back' }, { v: 1 });
  t.is((await client.get({ namespace: 'test', set: 's', key: 'back' }))?.bins.v, 1);
});

/** A string key whose digest falls in an odd partition (mastered by A1 in the even/odd split). */
function keyInOddPartition(): string {
  for (let i = 0; ; i++) {
    const key = `odd${i}`;
    if (partitionOf(computeDigest('s', key)) % 2 === 1) return key;
  }
}
