/**
 * Test fixture: a ClusterView that splits the partitions even/odd between two in-process nodes
 * listing each other as peers (used by the verify test to build a two-node site without
 * heartbeats). Real clusters, with the partition table, are tested in test/cluster/.
 */
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
