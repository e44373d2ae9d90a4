/**
 * What `ferry dashboard` shows for any deployment: every node of every site (the nodes named,
 * plus every member of their clusters, looked up with `ferry-cluster` on each poll; info
 * `xdr-stats` with partitions, through ops/lag.ts) and every receiver (GET /stats), polled at one interval,
 * kept as a bounded time series plus the latest answer of each, and the per-partition lag view of
 * each site (ops/partition-lag.ts, every partition behind). A node that ships nothing (a
 * passive site) is listed as such; one that does not answer is listed with the error, and the
 * others keep being shown. The rebalance view (ops/rebalance-view.ts) polls every node's
 * `ferry-cluster` too: migrations out and in and stored bytes per node, charted over time.
 */
import type { ReceiverStats } from '../receiver/receiver.js';
import { LagSource, type PartitionLag, type StreamLag } from './lag.js';
import { buildPartitionLagViews, type PartitionLagView } from './partition-lag.js';
import { pollRebalance, type RebalanceRow } from './rebalance-view.js';
import { siteMembers } from './site-lag.js';
import { OpsError, endpointText, getJson, parseHostPortList, type Endpoint } from './util.js';

/** Samples kept (at one a second: ten minutes). */
export const MONITOR_SAMPLES_MAX = 600;
/** Partitions listed per stream: the ones furthest behind. */
export const MONITOR_PARTITIONS_MAX = 200;

export interface SiteTarget {
  name: string;
  nodes: Endpoint[];
}

export interface NodeView {
  site: string;
  node: string;
  /** 'shipping' | 'passive' (no xdr section) | 'unreachable' */
  status: 'shipping' | 'passive' | 'unreachable';
  error: string;
  streams: Array<Omit<StreamLag, 'partitions'> & { partitions: PartitionLag[] }>;
}

export interface ReceiverView {
  url: string;
  error: string;
  stats: ReceiverStats | null;
}

/** One poll: a value per series key (`site/node/destination/namespace` or a receiver URL). */
export interface MonitorSample {
  at: number;
  streams: Record<string, { recordsBehind: number; msBehind: number; shippedPerS: number; retries: number }>;
  receivers: Record<string, { appliedPerS: number; consumerLag: number; lostConflict: number; deadLettered: number; applyLagMs: number }>;
  /** Per `site/node`: the rebalance view's figures (absent from nodes that do not report them). */
  rebalance?: Record<string, { storedBytes: number; migrateTx: number; migrateRx: number }>;
}

export interface MonitorState {
  startedAt: number;
  sites: Array<{ name: string; nodes: string[] }>;
  receivers: string[];
  nodes: NodeView[];
  receiverViews: ReceiverView[];
  samples: readonly MonitorSample[];
  /** Per site, destination and namespace: every partition behind (ops/partition-lag.ts). */
  partitionLag: PartitionLagView[];
  /** Per node: quiesced, migrations out and in, stored bytes (ops/rebalance-view.ts). */
  rebalance: RebalanceRow[];
}

/** `A=host:port[,host:port...]` -> a site; throws USAGE naming the option. */
export function parseSiteOption(s: string): SiteTarget {
  const m = /^([A-Za-z0-9_-]{1,32})=(.+)$/.exec(s);
  if (!m) throw new OpsError('USAGE', `--site must be NAME=host:port[,host:port...], got "${s}"`);
  return { name: m[1]!, nodes: parseHostPortList(m[2]!, `--site ${m[1]}`) };
}

export class DeploymentMonitor {
  /** Per site: node text -> its lag source (named nodes first, then discovered members). */
  private readonly sources = new Map<string, Map<string, { site: string; node: Endpoint; source: LagSource }>>();
  private readonly samples: MonitorSample[] = [];
  private nodes: NodeView[] = [];
  private receiverViews: ReceiverView[] = [];
  private partitionLag: PartitionLagView[] = [];
  private rebalance: RebalanceRow[] = [];
  private readonly startedAt = Date.now();

  constructor(
    private readonly sites: SiteTarget[],
    private readonly receivers: string[],
    private readonly timeoutMs: number,
  ) {
    for (const s of sites) this.sources.set(s.name, new Map(s.nodes.map((node) => [endpointText(node), { site: s.name, node, source: new LagSource(node, undefined, true, timeoutMs) }])));
  }

  /** Adds the members of each site's cluster not named on the command line (a node that does not answer keeps its row). */
  private async discover(): Promise<void> {
    await Promise.all(
      this.sites.map(async (site) => {
        const known = this.sources.get(site.name)!;
        for (const seed of site.nodes) {
          try {
            const { members } = await siteMembers(seed, this.timeoutMs);
            for (const m of members) {
              const k = endpointText(m.endpoint);
              if (!known.has(k)) known.set(k, { site: site.name, node: m.endpoint, source: new LagSource(m.endpoint, undefined, true, this.timeoutMs) });
            }
            return;
          } catch {
            // try the next named node; none answering shows as unreachable rows
          }
        }
      }),
    );
  }

  /** Polls every node and receiver once (all at the same time) and appends a sample. */
  async poll(): Promise<void> {
    await this.discover();
    const at = Date.now();
    const all = [...this.sources.values()].flatMap((m) => [...m.values()]);
    const [polled, receivers, rebalance] = await Promise.all([
      Promise.all(all.map((s) => this.pollNode(s))),
      Promise.all(this.receivers.map((url) => this.pollReceiver(url))),
      Promise.all(all.map((s) => pollRebalance(s.site, s.node, this.timeoutMs))),
    ]);
    this.rebalance = rebalance;
    // The partition view takes every partition behind; the node rows list the worst few.
    this.partitionLag = this.sites.flatMap((site) => buildPartitionLagViews(at, site.name, polled.filter((n) => n.site === site.name)));
    const nodes = polled.map((n) => ({ ...n, streams: n.streams.map((st) => ({ ...st, partitions: worstPartitions(st.partitions) })) }));
    this.nodes = nodes;
    this.receiverViews = receivers;
    const sample: MonitorSample = { at, streams: {}, receivers: {}, rebalance: {} };
    for (const r of rebalance) if (r.storedBytes >= 0) sample.rebalance![`${r.site}/${r.node}`] = { storedBytes: r.storedBytes, migrateTx: r.migrateTx, migrateRx: r.migrateRx };
    for (const n of nodes) {
      for (const st of n.streams) sample.streams[`${n.site}/${n.node}/${st.destination}/${st.namespace}`] = { recordsBehind: st.recordsBehind, msBehind: st.msBehind, shippedPerS: st.shippedPerS, retries: st.retries };
    }
    for (const r of receivers) {
      if (r.stats) sample.receivers[r.url] = { appliedPerS: r.stats.appliedPerS, consumerLag: r.stats.consumerLag, lostConflict: r.stats.lostConflict, deadLettered: r.stats.deadLettered, applyLagMs: r.stats.applyLagMs };
    }
    this.samples.push(sample);
    if (this.samples.length > MONITOR_SAMPLES_MAX) this.samples.splice(0, this.samples.length - MONITOR_SAMPLES_MAX);
  }

  private async pollNode(s: { site: string; node: Endpoint; source: LagSource }): Promise<NodeView> {
    const node = endpointText(s.node);
    try {
      const r = await s.source.collect();
      const streams = r.streams.map((st) => ({ ...st, partitions: st.partitions ?? [] }));
      return { site: s.site, node, status: 'shipping', error: '', streams };
    } catch (err) {
      const passive = err instanceof OpsError && err.code === 'PROTOCOL';
      return { site: s.site, node, status: passive ? 'passive' : 'unreachable', error: passive ? '' : (err as Error).message, streams: [] };
    }
  }

  private async pollReceiver(url: string): Promise<ReceiverView> {
    try {
      return { url, error: '', stats: await getJson<ReceiverStats>(`${url}/stats`, this.timeoutMs) };
    } catch (err) {
      return { url, error: (err as Error).message, stats: null };
    }
  }

  state(): MonitorState {
    return {
      startedAt: this.startedAt,
      sites: this.sites.map((s) => ({ name: s.name, nodes: [...this.sources.get(s.name)!.keys()] })),
      receivers: this.receivers,
      nodes: this.nodes,
      receiverViews: this.receiverViews,
      samples: this.samples,
      partitionLag: this.partitionLag,
      rebalance: this.rebalance,
    };
  }

  close(): void {
    for (const m of this.sources.values()) for (const s of m.values()) s.source.close();
  }
}

/** The MONITOR_PARTITIONS_MAX partitions furthest behind. */
function worstPartitions(parts: readonly PartitionLag[]): PartitionLag[] {
  return [...parts].sort((x, y) => y.behind - x.behind || x.pid - y.pid).slice(0, MONITOR_PARTITIONS_MAX);
}
