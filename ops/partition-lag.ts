/**
 * The per-partition lag view of a site: for each destination and namespace, every partition
 * still behind (or being rescanned from its checkpoint) anywhere in the site, with the node that
 * ships it. Built from the same per-node `xdr-stats` (with partitions) that `ferry lag --site`
 * reports; the dashboard draws it as a 64 x 64 grid of the 4096 partitions.
 *
 * Pure: reports in, view out. A partition is listed by the node that reports it; while a
 * partition changes hands two nodes may both list it for a poll, and then the larger backlog
 * is kept (the view is of what the site still owes, not a sum of two views of one log).
 */
import { PARTITION_COUNT } from '../store/index.js';
import type { StreamLag } from './lag.js';

/** One partition behind: [pid, records behind, index into `nodes`, rescanning 0/1, ms since its checkpoint (0 = none)]. */
export type PartitionLagCell = [number, number, number, number, number];

export interface PartitionLagView {
  site: string;
  destination: string;
  namespace: string;
  /** Nodes reporting this stream (cells name them by index). */
  nodes: string[];
  partitions: number;
  partitionsBehind: number;
  recordsBehind: number;
  /** The partition furthest behind, -1 when none is. */
  worstPid: number;
  worstBehind: number;
  /** Sorted by pid. */
  cells: PartitionLagCell[];
}

/** The views of one site from its nodes' streams (nodes that did not answer have none). */
export function buildPartitionLagViews(at: number, site: string, nodes: ReadonlyArray<{ node: string; streams: readonly StreamLag[] }>): PartitionLagView[] {
  const views = new Map<string, { view: PartitionLagView; byPid: Map<number, PartitionLagCell> }>();
  for (const n of nodes) {
    for (const s of n.streams) {
      const key = `${s.destination}\u0000${s.namespace}`;
      let v = views.get(key);
      if (!v) {
        v = { view: { site, destination: s.destination, namespace: s.namespace, nodes: [], partitions: PARTITION_COUNT, partitionsBehind: 0, recordsBehind: 0, worstPid: -1, worstBehind: 0, cells: [] }, byPid: new Map() };
        views.set(key, v);
      }
      const nodeIndex = v.view.nodes.push(n.node) - 1;
      for (const p of s.partitions ?? []) {
        if (!(p.pid >= 0 && p.pid < PARTITION_COUNT)) continue; // a node's bad answer must not break the page
        const cell: PartitionLagCell = [p.pid, p.behind, nodeIndex, p.recovering ? 1 : 0, p.checkpointMs > 0 ? Math.max(0, at - p.checkpointMs) : 0];
        const seen = v.byPid.get(p.pid);
        if (!seen || cell[1] > seen[1]) v.byPid.set(p.pid, cell);
      }
    }
  }
  return [...views.values()].map(({ view, byPid }) => {
    view.cells = [...byPid.values()].sort((x, y) => x[0] - y[0]);
    view.partitionsBehind = view.cells.length;
    for (const c of view.cells) {
      view.recordsBehind += c[1];
      if (c[1] > view.worstBehind) {
        view.worstBehind = c[1];
        view.worstPid = c[0];
      }
    }
    if (view.worstPid < 0 && view.cells.length > 0) view.worstPid = view.cells[0]![0];
    return view;
  });
}
