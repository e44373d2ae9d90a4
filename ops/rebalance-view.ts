/**
 * The dashboard's rebalance view: per node, whether it is quiesced, the partitions it still has
 * to migrate out and in, and its stored bytes (info `ferry-cluster`, summed over namespaces), so
 * a rebalance can be watched node by node: a node taking in much more than it hands off, or its
 * stored bytes climbing past its share, shows at once.
 */
import { describeNode, migrationTotals } from './commands/cluster.js';
import { endpointText, errorText, type Endpoint } from './util.js';

export interface RebalanceRow {
  site: string;
  node: string;
  nodeId: string;
  quiesced: boolean;
  /** Partitions still to send / to receive; -1 when the node does not say (no cluster, older node). */
  migrateTx: number;
  migrateRx: number;
  /** Stored bytes over all namespaces; -1 when unknown. */
  storedBytes: number;
  error: string;
}

export async function pollRebalance(site: string, node: Endpoint, timeoutMs: number): Promise<RebalanceRow> {
  const text = endpointText(node);
  try {
    const d = await describeNode(node, timeoutMs);
    const m = migrationTotals(d);
    return { site, node: text, nodeId: d.nodeId, quiesced: d.quiesced === true, migrateTx: m?.tx ?? -1, migrateRx: m?.rx ?? -1, storedBytes: m?.storedBytes ?? -1, error: '' };
  } catch (err) {
    return { site, node: text, nodeId: '', quiesced: false, migrateTx: -1, migrateRx: -1, storedBytes: -1, error: errorText(err) };
  }
}
