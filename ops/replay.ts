/**
 * Replay, two ways:
 * - rewindGroup: moves a receiver consumer group's committed offsets back (or forward) to a time,
 *   an offset or the beginning of a topic (kafkajs admin). The group must have no active member:
 *   a running consumer would overwrite the offsets with its own commits. Setting the same target
 *   twice gives the same offsets (idempotent); the receiver's conflict resolution makes
 *   re-applying harmless.
 * - reship: asks a shipping node (info `xdr-reship`) to ship again every record of a partition
 *   range whose last-update time is after a time, then follows `xdr-stats` until the stream has
 *   caught up.
 */
import { Kafka, logLevel } from 'kafkajs';
import { NO_KAFKA_SECURITY, describeKafkaError, isKafkaAuthFailure, kafkaClientSecurity, type KafkaSecurity } from '../kafka/security.js';
import type { StreamStats } from '../shipper/shipper.js';
import { parseXdrStats } from './lag.js';
import { NodeConn, OpsError, endpointText, errorText, sleep, type Endpoint } from './util.js';

/** Store partitions (ids 0..4095). */
export const STORE_PARTITIONS = 4096;
/** Kafka admin: connection and request timeouts. */
const KAFKA_CONNECT_TIMEOUT_MS = 5_000;
const KAFKA_REQUEST_TIMEOUT_MS = 10_000;
/** The short-lived consumer that commits new offsets: its idle fetch wait, and its whole budget. */
const SET_OFFSETS_FETCH_WAIT_MS = 100;
const SET_OFFSETS_TIMEOUT_MS = 30_000;

export type RewindTarget = { kind: 'time'; ms: number } | { kind: 'offset'; offset: number } | { kind: 'beginning' };

export interface PartitionRewind {
  partition: number;
  /** Committed offset before; -1 = the group had none. */
  old: number;
  new: number;
  /** Log start and end (high watermark) of the partition. */
  low: number;
  high: number;
  /** --offset outside [low, high] was moved into it. */
  clamped: boolean;
}

export interface RewindReport {
  group: string;
  topic: string;
  target: RewindTarget;
  partitions: PartitionRewind[];
  /** Messages the group will consume again (or skip, when negative), summed. */
  replayMessages: number;
}

export interface RewindOptions {
  brokers: string[];
  group: string;
  topic: string;
  target: RewindTarget;
  /** TLS and SASL to Kafka, as the shipper and receiver have them (kafka/security.ts); none by default. */
  security?: KafkaSecurity;
}

/** Offsets to set, from the partition bounds and the target (pure). */
export function planRewind(
  bounds: Array<{ partition: number; low: number; high: number }>,
  committed: Map<number, number>,
  target: RewindTarget,
  byTime: Map<number, number>,
): PartitionRewind[] {
  return bounds
    .map((b) => {
      let next: number;
      let clamped = false;
      if (target.kind === 'beginning') next = b.low;
      else if (target.kind === 'time') next = byTime.get(b.partition) ?? b.high;
      else {
        next = Math.min(Math.max(target.offset, b.low), b.high);
        clamped = next !== target.offset;
      }
      return { partition: b.partition, old: committed.get(b.partition) ?? -1, new: next, low: b.low, high: b.high, clamped };
    })
    .sort((x, y) => x.partition - y.partition);
}

function kafkaClient(brokers: string[], security: KafkaSecurity): Kafka {
  let secure: ReturnType<typeof kafkaClientSecurity>;
  try {
    secure = kafkaClientSecurity(security);
  } catch (err) {
    throw new OpsError('USAGE', errorText(err));
  }
  return new Kafka({
    clientId: 'ferry-replay',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: KAFKA_CONNECT_TIMEOUT_MS,
    requestTimeout: KAFKA_REQUEST_TIMEOUT_MS,
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 },
    ...secure,
  });
}

/**
 * Commits offsets for a group that has no active member: joins it briefly as a paused consumer,
 * seeks every partition (committed at once) and leaves. Same steps as kafkajs admin.setOffsets,
 * whose paused consumer idles its fixed 5 s fetch wait before it can leave.
 */
async function commitGroupOffsets(kafka: Kafka, group: string, topic: string, partitions: Array<{ partition: number; offset: number }>): Promise<void> {
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: SET_OFFSETS_FETCH_WAIT_MS, sessionTimeout: 10_000, rebalanceTimeout: 10_000 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new OpsError('TIMEOUT', `setting offsets of group ${group} took over ${SET_OFFSETS_TIMEOUT_MS} ms`)), SET_OFFSETS_TIMEOUT_MS);
        consumer.on(consumer.events.FETCH, () => {
          consumer.stop().then(resolve, reject);
        });
        consumer.run({ autoCommit: true, eachBatchAutoResolve: false, eachBatch: async () => undefined }).catch(reject);
        consumer.pause([{ topic }]);
        for (const p of partitions) consumer.seek({ topic, partition: p.partition, offset: String(p.offset) });
      });
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

export async function rewindGroup(o: RewindOptions): Promise<RewindReport> {
  const security = o.security ?? NO_KAFKA_SECURITY;
  const kafka = kafkaClient(o.brokers, security);
  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (err) {
    // Bad credentials or certificates: say so, naming the user and TLS mode (no retry fixes it).
    if (isKafkaAuthFailure(err)) throw new OpsError('REFUSED', describeKafkaError(err, `group ${o.group}`, o.brokers, security));
    throw new OpsError('UNREACHABLE', `Kafka ${o.brokers.join(',')}: ${errorText(err)}`);
  }
  try {
    const { groups } = await admin.describeGroups([o.group]);
    const g = groups.find((x) => x.groupId === o.group);
    if (g && g.members.length > 0) {
      const who = g.members.map((m) => `${m.clientId}@${m.clientHost}`).join(', ');
      throw new OpsError(
        'GROUP_ACTIVE',
        `consumer group ${o.group} has ${g.members.length} active member(s) (${who}; state ${g.state}). ` +
          `Stop the receivers of this group first (POST /stop on their metrics port, or end the processes), ` +
          `then run ferry replay again; a receiver killed without a clean stop leaves the group after its session timeout.`,
      );
    }
    const topics = await admin.fetchTopicMetadata({ topics: [o.topic] }).catch((err: unknown) => {
      throw new OpsError('REFUSED', `topic ${o.topic}: ${errorText(err)}`);
    });
    if ((topics.topics[0]?.partitions.length ?? 0) === 0) throw new OpsError('REFUSED', `topic ${o.topic} does not exist`);
    const ends = await admin.fetchTopicOffsets(o.topic);
    const bounds = ends.map((e) => ({ partition: e.partition, low: Number(e.low), high: Number(e.high) }));
    const committedRows = await admin.fetchOffsets({ groupId: o.group, topics: [o.topic] });
    const committed = new Map<number, number>();
    for (const t of committedRows) for (const p of t.partitions) committed.set(p.partition, Number(p.offset));
    const byTime = new Map<number, number>();
    if (o.target.kind === 'time') {
      for (const p of await admin.fetchTopicOffsetsByTimestamp(o.topic, o.target.ms)) byTime.set(p.partition, Number(p.offset));
    }
    const plan = planRewind(bounds, committed, o.target, byTime);
    await commitGroupOffsets(kafka, o.group, o.topic, plan.map((p) => ({ partition: p.partition, offset: p.new })));
    // Read back what the broker holds now.
    const after = new Map<number, number>();
    for (const t of await admin.fetchOffsets({ groupId: o.group, topics: [o.topic] })) for (const p of t.partitions) after.set(p.partition, Number(p.offset));
    for (const p of plan) {
      if (after.get(p.partition) !== p.new) throw new OpsError('REFUSED', `partition ${p.partition}: offset ${p.new} was set but the broker reports ${after.get(p.partition) ?? 'none'}`);
    }
    const replayMessages = plan.reduce((sum, p) => sum + ((p.old < 0 ? p.low : p.old) - p.new), 0);
    return { group: o.group, topic: o.topic, target: o.target, partitions: plan, replayMessages };
  } catch (err) {
    if (err instanceof OpsError) throw err;
    const e = err as Error & { type?: string };
    if (e.type === 'REBALANCE_IN_PROGRESS' || e.type === 'UNKNOWN_MEMBER_ID' || /running|active/i.test(e.message)) {
      throw new OpsError('GROUP_ACTIVE', `consumer group ${o.group} became active meanwhile (${e.message}); stop its receivers and retry`);
    }
    if (e.name === 'KafkaJSConnectionError' || e.name === 'KafkaJSNumberOfRetriesExceeded') throw new OpsError('UNREACHABLE', `Kafka ${o.brokers.join(',')}: ${e.message}`);
    throw new OpsError('REFUSED', `Kafka: ${e.message}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export function formatRewind(r: RewindReport): string {
  const t = r.target;
  const what = t.kind === 'beginning' ? 'the beginning' : t.kind === 'offset' ? `offset ${t.offset}` : `time ${new Date(t.ms).toISOString()} (${t.ms})`;
  const lines = [`group ${r.group}, topic ${r.topic}: offsets set to ${what}`];
  for (const p of r.partitions) {
    const note = p.clamped ? ` (clamped to [${p.low}, ${p.high}])` : '';
    lines.push(`  partition ${String(p.partition).padStart(3)}: ${p.old < 0 ? 'none' : p.old} -> ${p.new}${note}`);
  }
  lines.push(
    r.replayMessages >= 0
      ? `${r.replayMessages} message(s) will be consumed again when the receivers start`
      : `${-r.replayMessages} message(s) will be skipped when the receivers start`,
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------- re-ship from the source

export interface ReshipOptions {
  node: Endpoint;
  dc: string;
  namespace: string;
  fromMs: number;
  partitionFrom: number;
  partitionTo: number;
  /** Give up following progress after this long (the re-ship itself carries on in the node). */
  timeoutMs: number;
  pollMs: number;
  requestTimeoutMs: number;
  signal?: AbortSignal;
  progress?: (p: ReshipProgress) => void;
}

export interface ReshipProgress {
  elapsedMs: number;
  recoveringPartitions: number;
  recordsBehind: number;
  /** Records shipped since the request. */
  shipped: number;
}

export interface ReshipReport {
  node: string;
  dc: string;
  namespace: string;
  topic: string;
  fromMs: number;
  partitionFrom: number;
  partitionTo: number;
  answer: string;
  completed: boolean;
  shipped: number;
  elapsedMs: number;
}

function streamOf(text: string, node: string, dc: string, ns: string): StreamStats {
  const x = parseXdrStats(text, node);
  const s = x.streams.find((st) => st.destination === dc && st.namespace === ns);
  if (!s) {
    const have = x.streams.map((st) => `${st.destination}/${st.namespace}`).join(', ') || 'none';
    throw new OpsError('USAGE', `node ${node} ships no stream ${dc}/${ns} (it has: ${have})`);
  }
  return s;
}

export async function reship(o: ReshipOptions): Promise<ReshipReport> {
  if (!(o.partitionFrom >= 0 && o.partitionTo < STORE_PARTITIONS && o.partitionFrom <= o.partitionTo)) {
    throw new OpsError('USAGE', `partition range must be within 0..${STORE_PARTITIONS - 1} and from <= to, got ${o.partitionFrom}..${o.partitionTo}`);
  }
  const name = endpointText(o.node);
  const conn = await NodeConn.open(o.node, o.requestTimeoutMs);
  try {
    const before = streamOf(await conn.info('xdr-stats'), name, o.dc, o.namespace);
    const cmd = `xdr-reship:dc=${o.dc};namespace=${o.namespace};from=${o.fromMs};partition-from=${o.partitionFrom};partition-to=${o.partitionTo}`;
    const answer = await conn.info(cmd);
    const started = Date.now();
    let last = before;
    let completed = false;
    // The shipper marks the partitions at once; wait for both the re-scans and the log tail.
    for (;;) {
      await sleep(o.pollMs, o.signal);
      if (o.signal?.aborted) throw new OpsError('INTERRUPTED', 'interrupted; the node keeps re-shipping');
      last = streamOf(await conn.info('xdr-stats'), name, o.dc, o.namespace);
      const p: ReshipProgress = {
        elapsedMs: Date.now() - started,
        recoveringPartitions: last.recoveringPartitions,
        recordsBehind: last.recordsBehind,
        shipped: Math.max(0, last.shipped - before.shipped),
      };
      o.progress?.(p);
      if (last.recoveringPartitions === 0 && last.recordsBehind === 0) {
        completed = true;
        break;
      }
      if (p.elapsedMs >= o.timeoutMs) break;
    }
    return {
      node: name,
      dc: o.dc,
      namespace: o.namespace,
      topic: last.topic,
      fromMs: o.fromMs,
      partitionFrom: o.partitionFrom,
      partitionTo: o.partitionTo,
      answer,
      completed,
      shipped: Math.max(0, last.shipped - before.shipped),
      elapsedMs: Date.now() - started,
    };
  } finally {
    conn.close();
  }
}

export function formatReshipProgress(p: ReshipProgress): string {
  return `re-shipping: ${p.recoveringPartitions} partition(s) re-scanning, ${p.recordsBehind} record(s) behind, ${p.shipped} shipped, ${(p.elapsedMs / 1000).toFixed(1)} s`;
}

export function formatReship(r: ReshipReport): string {
  const range = r.partitionFrom === 0 && r.partitionTo === STORE_PARTITIONS - 1 ? 'all partitions' : `partitions ${r.partitionFrom}..${r.partitionTo}`;
  const head = `${r.node} -> ${r.dc} (${r.topic}), namespace ${r.namespace}, ${range}, changes after ${new Date(r.fromMs).toISOString()}`;
  return r.completed
    ? `${head}: re-shipped, ${r.shipped} record(s) produced in ${(r.elapsedMs / 1000).toFixed(1)} s`
    : `${head}: still in progress after ${(r.elapsedMs / 1000).toFixed(1)} s (${r.shipped} record(s) so far); the node carries on, follow it with ferry lag`;
}
