/**
 * Replication lag of a shipping node (info `xdr-stats`) and, optionally, of the receiver that
 * applies its topic (HTTP GET /stats): collected into one report, formatted as tables or JSON.
 */
import type { ReceiverStats } from '../receiver/receiver.js';
import type { StreamStats } from '../shipper/shipper.js';
import { PARTITION_COUNT } from '../store/index.js';
import { NodeConn, OpsError, endpointText, formatDurationMs, formatTable, getJson, type Endpoint } from './util.js';

export interface PartitionLag {
  pid: number;
  behind: number;
  checkpointMs: number;
  recovering: boolean;
}

export interface StreamLag {
  destination: string;
  namespace: string;
  topic: string;
  connected: boolean;
  recordsBehind: number;
  msBehind: number;
  shippedPerS: number;
  shipped: number;
  retries: number;
  errors: number;
  lastError: string;
  recoveringPartitions: number;
  /** Partitions the node masters, so ships (4096 alone; absent from nodes before clusters shipped). */
  masterPartitions: number;
  /** True when the receiver given consumes this stream's topic. */
  received: boolean;
  partitions?: PartitionLag[];
}

export interface ReceiverLag {
  url: string;
  groupId: string;
  topics: string[];
  running: boolean;
  applied: number;
  appliedPerS: number;
  lostConflict: number;
  deadLettered: number;
  retries: number;
  /** Messages in Kafka not yet committed by the group; -1 before the first measurement. */
  consumerLag: number;
  applyLagMs: number;
  maxSourceLutMs: number;
  lastError: string;
}

export interface LagReport {
  at: number;
  node: string;
  site: string;
  streams: StreamLag[];
  receiver?: ReceiverLag;
}

interface XdrStatsAnswer {
  site: string;
  streams: StreamStats[];
}

/** Parses the `xdr-stats` answer; throws PROTOCOL when it is not the shipper's JSON. */
export function parseXdrStats(text: string, node: string): XdrStatsAnswer {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new OpsError('PROTOCOL', `node ${node}: xdr-stats answered "${text.slice(0, 120)}", not JSON (is this node shipping? it needs an "xdr" section in its config)`);
  }
  const o = v as Partial<XdrStatsAnswer>;
  if (typeof o !== 'object' || o === null || !Array.isArray(o.streams)) throw new OpsError('PROTOCOL', `node ${node}: xdr-stats answer has no streams`);
  return { site: String(o.site ?? ''), streams: o.streams };
}

/** Builds the report from the raw answers (pure). */
export function buildLagReport(at: number, node: string, xdr: XdrStatsAnswer, receiver?: { url: string; stats: ReceiverStats }): LagReport {
  const topics = new Set(receiver?.stats.topics ?? []);
  const streams = xdr.streams.map((s): StreamLag => {
    const row: StreamLag = {
      destination: s.destination,
      namespace: s.namespace,
      topic: s.topic,
      connected: s.connected,
      recordsBehind: s.recordsBehind,
      msBehind: s.msBehind,
      shippedPerS: s.shippedPerS,
      shipped: s.shipped,
      retries: s.retries,
      errors: s.errors,
      lastError: s.lastError,
      recoveringPartitions: s.recoveringPartitions,
      masterPartitions: s.masterPartitions ?? PARTITION_COUNT,
      received: topics.has(s.topic),
    };
    if (s.partitions) row.partitions = s.partitions.filter((p) => p.behind > 0 || p.recovering);
    return row;
  });
  const report: LagReport = { at, node, site: xdr.site, streams };
  if (receiver) {
    const r = receiver.stats;
    report.receiver = {
      url: receiver.url,
      groupId: r.groupId,
      topics: r.topics,
      running: r.running,
      applied: r.applied,
      appliedPerS: r.appliedPerS,
      lostConflict: r.lostConflict,
      deadLettered: r.deadLettered,
      retries: r.retries,
      consumerLag: r.consumerLag,
      applyLagMs: r.applyLagMs,
      maxSourceLutMs: r.maxSourceLutMs,
      lastError: r.lastError,
    };
  }
  return report;
}

/** The report as text tables (pure). */
export function formatLagReport(r: LagReport): string {
  const out: string[] = [];
  out.push(`site ${r.site || '?'} at ${r.node}, ${new Date(r.at).toISOString()}`);
  const rc = r.receiver;
  const headers = ['DEST', 'NAMESPACE', 'BEHIND', 'MS BEHIND', 'SHIPPED/S', 'RETRIES'];
  if (rc) headers.push('APPLIED/S', 'LOST CONFLICT', 'DEAD-LETTERED', 'CONSUMER LAG', 'APPLY LAG MS');
  const rows: Array<Array<string | number>> = [];
  const rcCols = (): Array<string | number> => (rc ? [rc.appliedPerS, rc.lostConflict, rc.deadLettered, rc.consumerLag < 0 ? '?' : rc.consumerLag, rc.applyLagMs] : []);
  const blank = (): Array<string | number> => (rc ? ['-', '-', '-', '-', '-'] : []);
  for (const s of r.streams) {
    rows.push([s.destination, s.namespace, s.recordsBehind, s.msBehind, s.shippedPerS, s.retries, ...(s.received ? rcCols() : blank())]);
  }
  if (rc && !r.streams.some((s) => s.received)) rows.push([`(receiver ${rc.topics.join(',')})`, '-', '-', '-', '-', '-', ...rcCols()]);
  if (rows.length === 0) out.push('no streams: the node ships no namespace');
  else out.push(formatTable(headers, rows, headers.map((_, i) => (i < 2 ? 'left' : 'right'))));
  for (const s of r.streams) {
    const notes: string[] = [];
    if (!s.connected) notes.push('not connected to Kafka');
    if (s.recoveringPartitions > 0) notes.push(`${s.recoveringPartitions} partition(s) re-scanning`);
    if (s.msBehind > 0) notes.push(`oldest unshipped change ${formatDurationMs(s.msBehind)} ago`);
    if (s.lastError) notes.push(`last error: ${s.lastError}`);
    if (notes.length > 0) out.push(`  ${s.destination}/${s.namespace} (${s.topic}): ${notes.join('; ')}`);
  }
  if (rc) {
    const notes = [`group ${rc.groupId}`, rc.running ? 'running' : 'stopped', `applied ${rc.applied}`];
    if (rc.consumerLag < 0) notes.push('consumer lag not measured yet');
    if (rc.lastError) notes.push(`last error: ${rc.lastError}`);
    out.push(`  receiver ${rc.url}: ${notes.join('; ')}`);
  }
  const parts = r.streams.flatMap((s) => (s.partitions ?? []).map((p) => [s.destination, s.namespace, p.pid, p.behind, p.recovering ? 'yes' : 'no', p.checkpointMs > 0 ? new Date(p.checkpointMs).toISOString() : '-']));
  if (r.streams.some((s) => s.partitions)) {
    out.push('');
    if (parts.length === 0) out.push('partitions: none behind');
    else out.push(formatTable(['DEST', 'NAMESPACE', 'PARTITION', 'BEHIND', 'RESCAN', 'CHECKPOINT'], parts, ['left', 'left', 'right', 'right', 'left', 'left']));
  }
  return out.join('\n');
}

/** Collects lag reports from a node and optional receiver; keeps the node connection between calls. */
export class LagSource {
  private conn: NodeConn | undefined;

  constructor(
    private readonly node: Endpoint,
    private readonly receiverUrl: string | undefined,
    private readonly partitions: boolean,
    private readonly timeoutMs: number,
  ) {}

  async collect(): Promise<LagReport> {
    const name = endpointText(this.node);
    const receiverP = this.receiverUrl ? getJson<ReceiverStats>(`${this.receiverUrl}/stats`, this.timeoutMs) : undefined;
    receiverP?.catch(() => undefined);
    let text: string;
    try {
      this.conn ??= await NodeConn.open(this.node, this.timeoutMs);
      text = await this.conn.info(this.partitions ? 'xdr-stats:partitions=true' : 'xdr-stats');
    } catch (err) {
      // Reconnect next time.
      this.conn?.close();
      this.conn = undefined;
      if (err instanceof OpsError && err.code === 'REFUSED') {
        throw new OpsError('PROTOCOL', `${err.message} (is this node shipping? it needs an "xdr" section in its config)`);
      }
      throw err;
    }
    const xdr = parseXdrStats(text, name);
    const receiver = receiverP && this.receiverUrl ? { url: this.receiverUrl, stats: await receiverP } : undefined;
    return buildLagReport(Date.now(), name, xdr, receiver);
  }

  close(): void {
    this.conn?.close();
    this.conn = undefined;
  }
}
