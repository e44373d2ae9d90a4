/**
 * Replication lag of a whole site: the members of the cluster a node belongs to (info
 * `ferry-cluster`, their service addresses) and each member's `xdr-stats` (ops/lag.ts), as one
 * report: per node, destination and namespace, plus a site total per destination and namespace
 * (records behind and throughput summed, ms behind the worst node). In a cluster each node ships
 * only the partitions it masters, so the site total is what the site still owes its
 * destinations. A member that does not answer is listed with its error; the total then says it
 * is incomplete.
 */
import type { ReceiverStats } from '../receiver/receiver.js';
import type { ClusterDescription } from '../store/index.js';
import { LagSource, buildLagReport, type LagReport, type ReceiverLag, type StreamLag } from './lag.js';
import { NodeConn, OpsError, endpointText, formatDurationMs, formatTable, getJson, type Endpoint } from './util.js';

export interface SiteMember {
  nodeId: string;
  endpoint: Endpoint;
}

/** The members of the cluster `seed` belongs to, with their service addresses. */
export async function siteMembers(seed: Endpoint, timeoutMs: number): Promise<{ clusterKey: string; members: SiteMember[] }> {
  const conn = await NodeConn.open(seed, timeoutMs);
  let text: string;
  try {
    text = await conn.info('ferry-cluster');
  } finally {
    conn.close();
  }
  let d: ClusterDescription;
  try {
    d = JSON.parse(text) as ClusterDescription;
  } catch {
    throw new OpsError('PROTOCOL', `node ${endpointText(seed)}: ferry-cluster answered "${text.slice(0, 120)}", not JSON (is this a ferry node?)`);
  }
  if (!Array.isArray(d.members)) throw new OpsError('PROTOCOL', `node ${endpointText(seed)}: ferry-cluster has no members`);
  const members: SiteMember[] = [];
  for (const m of d.members) {
    // This node's own entry may advertise 0.0.0.0 or another host; the seed address reached it.
    const endpoint = m.nodeId === d.nodeId ? seed : m.service;
    if (endpoint) members.push({ nodeId: m.nodeId, endpoint });
  }
  return { clusterKey: d.clusterKey, members };
}

export interface NodeLag {
  node: string;
  nodeId: string;
  /** Empty when the node answered. */
  error: string;
  streams: StreamLag[];
}

export interface SiteStreamTotal {
  destination: string;
  namespace: string;
  topic: string;
  /** Nodes that reported this stream. */
  nodes: number;
  masterPartitions: number;
  recordsBehind: number;
  /** The worst node's. */
  msBehind: number;
  shippedPerS: number;
  shipped: number;
  retries: number;
  errors: number;
  recoveringPartitions: number;
}

export interface SiteLagReport {
  at: number;
  seed: string;
  site: string;
  clusterKey: string;
  nodes: NodeLag[];
  total: SiteStreamTotal[];
  /** False when a member did not answer (the total misses its share). */
  complete: boolean;
  receiver?: ReceiverLag;
}

/** The site report from the per-node reports (pure). */
export function buildSiteLagReport(at: number, seed: string, clusterKey: string, nodes: Array<{ member: SiteMember; report?: LagReport; error?: string }>, receiver?: ReceiverLag): SiteLagReport {
  const totals = new Map<string, SiteStreamTotal>();
  let site = '';
  const out: NodeLag[] = [];
  for (const n of nodes) {
    const node = endpointText(n.member.endpoint);
    if (!n.report) {
      out.push({ node, nodeId: n.member.nodeId, error: n.error ?? 'no answer', streams: [] });
      continue;
    }
    site ||= n.report.site;
    out.push({ node, nodeId: n.member.nodeId, error: '', streams: n.report.streams });
    for (const s of n.report.streams) {
      const key = `${s.destination}\u0000${s.namespace}`;
      const t = totals.get(key) ?? { destination: s.destination, namespace: s.namespace, topic: s.topic, nodes: 0, masterPartitions: 0, recordsBehind: 0, msBehind: 0, shippedPerS: 0, shipped: 0, retries: 0, errors: 0, recoveringPartitions: 0 };
      t.nodes++;
      t.masterPartitions += s.masterPartitions;
      t.recordsBehind += s.recordsBehind;
      t.msBehind = Math.max(t.msBehind, s.msBehind);
      t.shippedPerS += s.shippedPerS;
      t.shipped += s.shipped;
      t.retries += s.retries;
      t.errors += s.errors;
      t.recoveringPartitions += s.recoveringPartitions;
      totals.set(key, t);
    }
  }
  if (receiver) for (const n of out) for (const s of n.streams) s.received = receiver.topics.includes(s.topic);
  const report: SiteLagReport = { at, seed, site, clusterKey, nodes: out, total: [...totals.values()], complete: out.every((n) => n.error === '') };
  if (receiver) report.receiver = receiver;
  return report;
}

/** The site report as text tables (pure). */
export function formatSiteLagReport(r: SiteLagReport): string {
  const lines: string[] = [];
  lines.push(`site ${r.site || '?'} (cluster ${r.clusterKey}, ${r.nodes.length} node(s), via ${r.seed}), ${new Date(r.at).toISOString()}`);
  const headers = ['NODE', 'NODE ID', 'DEST', 'NAMESPACE', 'MASTER PARTS', 'BEHIND', 'MS BEHIND', 'SHIPPED/S', 'RETRIES', 'RESCANNING'];
  const rows: Array<Array<string | number>> = [];
  for (const n of r.nodes) {
    if (n.error) rows.push([n.node, n.nodeId, '-', '-', '-', '-', '-', '-', '-', '-']);
    else if (n.streams.length === 0) rows.push([n.node, n.nodeId, '(ships nothing)', '-', '-', '-', '-', '-', '-', '-']);
    for (const s of n.streams) rows.push([n.node, n.nodeId, s.destination, s.namespace, s.masterPartitions, s.recordsBehind, s.msBehind, s.shippedPerS, s.retries, s.recoveringPartitions]);
  }
  for (const t of r.total) rows.push(['TOTAL', `${t.nodes} node(s)`, t.destination, t.namespace, t.masterPartitions, t.recordsBehind, t.msBehind, t.shippedPerS, t.retries, t.recoveringPartitions]);
  lines.push(formatTable(headers, rows, headers.map((_, i) => (i < 4 ? 'left' : 'right'))));
  for (const n of r.nodes) if (n.error) lines.push(`  node ${n.node} (${n.nodeId}): ${n.error}`);
  if (!r.complete) lines.push('  the total is incomplete: a member did not answer');
  for (const t of r.total) if (t.msBehind > 0) lines.push(`  ${t.destination}/${t.namespace}: oldest unshipped change ${formatDurationMs(t.msBehind)} ago`);
  const parts = r.nodes.flatMap((n) => n.streams.flatMap((s) => (s.partitions ?? []).map((p) => [n.node, s.destination, s.namespace, p.pid, p.behind, p.recovering ? 'yes' : 'no', p.checkpointMs > 0 ? new Date(p.checkpointMs).toISOString() : '-'])));
  if (r.nodes.some((n) => n.streams.some((s) => s.partitions))) {
    lines.push('');
    if (parts.length === 0) lines.push('partitions: none behind');
    else lines.push(formatTable(['NODE', 'DEST', 'NAMESPACE', 'PARTITION', 'BEHIND', 'RESCAN', 'CHECKPOINT'], parts, ['left', 'left', 'left', 'right', 'right', 'left', 'left']));
  }
  const rc = r.receiver;
  if (rc) lines.push(`  receiver ${rc.url}: group ${rc.groupId}; applied ${rc.applied} (${rc.appliedPerS}/s); consumer lag ${rc.consumerLag < 0 ? '?' : rc.consumerLag}; apply lag ${rc.applyLagMs} ms${rc.lastError ? `; last error: ${rc.lastError}` : ''}`);
  return lines.join('\n');
}

/** Collects site reports: members are looked up on every refresh (the cluster may change). */
export class SiteLagSource {
  private readonly sources = new Map<string, LagSource>();

  constructor(
    private readonly seed: Endpoint,
    private readonly receiverUrl: string | undefined,
    private readonly partitions: boolean,
    private readonly timeoutMs: number,
  ) {}

  async collect(): Promise<SiteLagReport> {
    const receiverP = this.receiverUrl ? getJson<ReceiverStats>(`${this.receiverUrl}/stats`, this.timeoutMs) : undefined;
    receiverP?.catch(() => undefined);
    const { clusterKey, members } = await siteMembers(this.seed, this.timeoutMs);
    const seen = new Set(members.map((m) => endpointText(m.endpoint)));
    for (const [k, s] of this.sources) {
      if (seen.has(k)) continue;
      s.close();
      this.sources.delete(k);
    }
    const nodes = await Promise.all(
      members.map(async (member) => {
        const k = endpointText(member.endpoint);
        let source = this.sources.get(k);
        if (!source) {
          source = new LagSource(member.endpoint, undefined, this.partitions, this.timeoutMs);
          this.sources.set(k, source);
        }
        try {
          return { member, report: await source.collect() };
        } catch (err) {
          return { member, error: (err as Error).message };
        }
      }),
    );
    let receiver: ReceiverLag | undefined;
    if (receiverP && this.receiverUrl) receiver = buildLagReport(0, '', { site: '', streams: [] }, { url: this.receiverUrl, stats: await receiverP }).receiver;
    return buildSiteLagReport(Date.now(), endpointText(this.seed), clusterKey, nodes, receiver);
  }

  close(): void {
    for (const s of this.sources.values()) s.close();
    this.sources.clear();
  }
}
