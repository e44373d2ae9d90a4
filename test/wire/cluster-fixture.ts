/**
 * Test fixture process: two real store nodes (memory namespaces) behind two wire servers whose
 * ClusterViews split the partitions even/odd and list each other as peers. Prints
 * `cluster listening <portA> <portB>` and runs until SIGTERM. The official client cannot run in
 * the same process as the servers (its seed connect blocks the event loop), hence a child process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadNodeConfig } from '../../store/config.js';
import { openStoreNode } from '../../store/node.js';
import type { StoreNode } from '../../store/api.js';
import { startWireServer, type WireServer } from '../../store/wire/server.js';
import type { ClusterView, Peer } from '../../store/wire/info.js';

export function evenOddView(index: number, peer: () => Peer): ClusterView {
  const owns = (pid: number): boolean => pid % 2 === index;
  return {
    partitionGeneration: () => 1,
    peersGeneration: () => 2,
    peers: () => [peer()],
    ownership: () => ({ regime: 0, replicas: [owns] }),
    clusterName: () => 'ferry',
    clusterSize: () => 2,
    clusterKey: () => 'ABCDEF01',
  };
}

export async function startEvenOddCluster(): Promise<{ members: Array<{ node: StoreNode; server: WireServer }>; close(): Promise<void> }> {
  const members: Array<{ node: StoreNode; server: WireServer; dir: string }> = [];
  for (let i = 0; i < 2; i++) {
    const dir = mkdtempSync(path.join(tmpdir(), 'ferry-wire-cluster-'));
    const config = loadNodeConfig({ env: { FERRY_NS_STORAGE_ENGINE: 'memory' }, overrides: { data: dir, 'node-id': `C${i}` } });
    const node = await openStoreNode(config);
    const other = 1 - i;
    const server = await startWireServer(node, {
      port: 0,
      view: evenOddView(i, () => ({ nodeId: members[other]!.node.nodeId, addresses: [{ host: '127.0.0.1', port: members[other]!.server.port }] })),
    });
    members.push({ node, server, dir });
  }
  return {
    members,
    async close() {
      for (const m of members) {
        await m.server.close();
        await m.node.close();
        rmSync(m.dir, { recursive: true, force: true });
      }
    },
  };
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const cluster = await startEvenOddCluster();
  console.log(`cluster listening ${cluster.members.map((m) => m.server.port).join(' ')}`);
  process.once('SIGTERM', () => {
    void cluster.close().then(() => process.exit(0));
  });
}
