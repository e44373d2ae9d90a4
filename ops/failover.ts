/**
 * Failover: promote the passive site of a namespace.
 *
 *  1. Preflight, nothing changed yet: every passive node answers and shows its fence; the
 *     receiver (if given) answers /stats.
 *  2. The old active, if given and reachable, is fenced first (it stops taking client writes),
 *     and its shipper is waited for until everything it holds is in Kafka.
 *  3. Drain: the receiver's consumer lag reaches 0 and nothing more is applied for one lag
 *     measurement period (or the drain timeout passes).
 *  4. Stop applying (receiver POST /stop; its answer holds the final counters).
 *  5. Lift the fence on every passive node and read it back.
 *  6. Report: the data-loss window = now - the newest source change that arrived (receiver
 *     maxSourceLutMs), whether the drain completed and whether the old active is fenced; RPO
 *     (0 when the old active was fenced and fully shipped and the drain completed, else the
 *     data-loss window as an upper bound) and RTO (from --outage-start, or from the start of
 *     the command, to the moment every passive node took client writes).
 *
 * Sites are clusters: the passive nodes named are extended with every member of their cluster
 * (info `ferry-cluster`), and the old active's members are all fenced and waited for.
 */
import type { ReceiverStats } from '../receiver/receiver.js';
import { parseXdrStats } from './lag.js';
import { siteMembers } from './site-lag.js';
import { NodeConn, OpsError, endpointText, errorText, formatDurationMs, getJson, parseKv, postJson, sleep, type Endpoint } from './util.js';

/** The receiver measures consumer lag this often; a drain must see it settle for longer. */
export const DRAIN_SETTLE_MS = 1_500;
const DRAIN_POLL_MS = 200;
/** The receiver's stop disconnects from Kafka, which can take a while. */
const RECEIVER_STOP_TIMEOUT_MS = 30_000;

export interface FailoverOptions {
  passive: Endpoint[];
  namespace: string;
  receiver?: string;
  oldActive?: Endpoint;
  /** When the active site stopped taking writes, if the operator knows (ms); RTO is measured from it. */
  outageStartMs?: number;
  drainTimeoutMs: number;
  requestTimeoutMs: number;
  signal?: AbortSignal;
  progress?: (line: string) => void;
}

export interface PromotedNode {
  node: string;
  fencedBefore: boolean;
  fencedAfter: boolean;
}

export interface OldActiveResult {
  node: string;
  reachable: boolean;
  fenced: boolean;
  /** Its shipper had nothing left for Kafka before the drain (false when unknown). */
  shipped: boolean;
  error?: string;
}

export interface FailoverReport {
  namespace: string;
  at: number;
  drain: { receiver: string | null; completed: boolean; consumerLag: number | null; waitedMs: number; timeoutMs: number; receiverWasRunning: boolean | null };
  receiverStopped: boolean;
  receiverFinal: Pick<ReceiverStats, 'applied' | 'lostConflict' | 'deadLettered' | 'maxSourceLutMs'> | null;
  promoted: PromotedNode[];
  oldActive: OldActiveResult | null;
  /** Newest source last-update time that reached this site; null when unknown. */
  newestSourceChangeMs: number | null;
  /** at - newestSourceChangeMs: changes on the old active newer than that may be lost. */
  dataLossWindowMs: number | null;
  /** Measured data loss bound: 0 when nothing can be lost, else dataLossWindowMs (null unknown). */
  rpoMs: number | null;
  /** Time the site was not writable: from rtoFrom to every passive node taking writes. */
  rtoMs: number;
  rtoFrom: 'outage-start' | 'command-start';
  /** Old active members fenced and waited for (its whole cluster). */
  oldActiveMembers: OldActiveResult[];
}

/** The nodes named plus every member of their cluster (the named ones when discovery fails). */
async function expandSite(named: Endpoint[], timeoutMs: number): Promise<Endpoint[]> {
  const out = new Map(named.map((e) => [endpointText(e), e]));
  for (const seed of named) {
    try {
      for (const m of (await siteMembers(seed, timeoutMs)).members) if (!out.has(endpointText(m.endpoint))) out.set(endpointText(m.endpoint), m.endpoint);
      break;
    } catch {
      // try the next one
    }
  }
  return [...out.values()];
}

function fencedOf(config: string): boolean {
  const v = parseKv(config).get('fenced');
  if (v === undefined) throw new OpsError('PROTOCOL', `get-config shows no fenced setting (is this a ferry node?)`);
  return v === 'true';
}

async function readFence(conn: NodeConn, ns: string): Promise<boolean> {
  return fencedOf(await conn.info(`get-config:context=namespace;id=${ns}`));
}

async function setFence(conn: NodeConn, ns: string, fenced: boolean): Promise<boolean> {
  await conn.info(`set-config:context=namespace;id=${ns};fenced=${fenced}`);
  return readFence(conn, ns);
}

/** Fences the old active and waits (until `deadline`) for its shipper to have nothing left. */
async function fenceOldActive(o: FailoverOptions, ep: Endpoint, deadline: number): Promise<OldActiveResult> {
  const res: OldActiveResult = { node: endpointText(ep), reachable: false, fenced: false, shipped: false };
  let conn: NodeConn;
  try {
    conn = await NodeConn.open(ep, o.requestTimeoutMs);
  } catch (err) {
    res.error = errorText(err);
    return res;
  }
  try {
    res.reachable = true;
    res.fenced = await setFence(conn, o.namespace, true);
    if (!res.fenced) res.error = 'set-config answered but the namespace is still not fenced';
    // Whatever it accepted before the fence must reach Kafka before the drain can be complete.
    for (;;) {
      let text: string;
      try {
        text = await conn.info('xdr-stats');
      } catch (err) {
        if (err instanceof OpsError && err.code === 'REFUSED') break; // no shipper on that node
        throw err;
      }
      const streams = parseXdrStats(text, res.node).streams.filter((s) => s.namespace === o.namespace);
      const behind = streams.reduce((n, s) => n + s.recordsBehind + s.recoveringPartitions, 0);
      if (behind === 0) {
        res.shipped = true;
        break;
      }
      if (Date.now() >= deadline || o.signal?.aborted) break;
      o.progress?.(`old active ${res.node}: ${behind} change(s) not yet in Kafka`);
      await sleep(DRAIN_POLL_MS, o.signal);
    }
  } catch (err) {
    res.error = errorText(err);
  } finally {
    conn.close();
  }
  return res;
}

export async function failover(o0: FailoverOptions): Promise<FailoverReport> {
  if (o0.passive.length === 0) throw new OpsError('USAGE', 'name at least one passive node');
  const started = Date.now();
  const o = { ...o0, passive: await expandSite(o0.passive, o0.requestTimeoutMs) };
  const deadline = started + o.drainTimeoutMs;
  const conns: NodeConn[] = [];
  /** What was changed so far, named in the error when a later step fails. */
  const changes: string[] = [];
  try {
    // 1. Preflight.
    const before: boolean[] = [];
    for (const ep of o.passive) {
      const c = await NodeConn.open(ep, o.requestTimeoutMs);
      conns.push(c);
      before.push(await readFence(c, o.namespace));
    }
    let stats: ReceiverStats | undefined;
    if (o.receiver) stats = await getJson<ReceiverStats>(`${o.receiver}/stats`, o.requestTimeoutMs);
    const wasRunning = stats?.running === true;

    // 2. The old active.
    const oldMembers = o.oldActive ? await expandSite([o.oldActive], o.requestTimeoutMs) : [];
    const oldActiveMembers = await Promise.all(oldMembers.map((ep) => fenceOldActive(o, ep, deadline)));
    for (const m of oldActiveMembers) if (m.fenced) changes.push(`old active ${m.node} fenced`);
    // The named node stands for its site: fenced and shipped only when every member is.
    const oldActive: OldActiveResult | null = oldActiveMembers.length === 0 ? null : {
      node: endpointText(o.oldActive!),
      reachable: oldActiveMembers.some((m) => m.reachable),
      fenced: oldActiveMembers.every((m) => m.fenced),
      shipped: oldActiveMembers.every((m) => m.shipped),
      ...(oldActiveMembers.some((m) => m.error) ? { error: oldActiveMembers.filter((m) => m.error).map((m) => `${m.node}: ${m.error}`).join('; ') } : {}),
    };

    // 3. Drain.
    let completed = false;
    // Waiting for the old active may have used the budget: the drain still gets one settle period.
    const drainDeadline = Math.max(deadline, Date.now() + DRAIN_SETTLE_MS + 2 * DRAIN_POLL_MS);
    if (o.receiver && stats) {
      let settledSince = 0;
      let seen = -1;
      for (;;) {
        const done = stats.applied + stats.lostConflict + stats.deadLettered;
        if (stats.consumerLag === 0 && done === seen) {
          if (settledSince === 0) settledSince = Date.now();
          if (Date.now() - settledSince >= DRAIN_SETTLE_MS) {
            completed = true;
            break;
          }
        } else settledSince = 0;
        seen = done;
        if (!stats.running) break; // stopped already: nothing more will be applied
        if (Date.now() >= drainDeadline) break;
        if (o.signal?.aborted) throw new OpsError('INTERRUPTED', 'interrupted during the drain; the passive site was not changed');
        o.progress?.(`draining: consumer lag ${stats.consumerLag < 0 ? '?' : stats.consumerLag}, applied ${stats.applied}`);
        await sleep(DRAIN_POLL_MS, o.signal);
        stats = await getJson<ReceiverStats>(`${o.receiver}/stats`, o.requestTimeoutMs);
      }
    }
    const drain = {
      receiver: o.receiver ?? null,
      completed,
      consumerLag: stats ? stats.consumerLag : null,
      waitedMs: Date.now() - started,
      timeoutMs: o.drainTimeoutMs,
      receiverWasRunning: stats ? wasRunning : null,
    };

    // 4. Stop applying.
    let receiverStopped = false;
    let receiverFinal: FailoverReport['receiverFinal'] = null;
    if (o.receiver) {
      const fin = await postJson<ReceiverStats>(`${o.receiver}/stop`, undefined, RECEIVER_STOP_TIMEOUT_MS);
      receiverStopped = fin.running === false;
      changes.push(`receiver ${o.receiver} stopped`);
      receiverFinal = { applied: fin.applied, lostConflict: fin.lostConflict, deadLettered: fin.deadLettered, maxSourceLutMs: fin.maxSourceLutMs };
    }

    // 5. Lift the fence.
    const promoted: PromotedNode[] = [];
    for (let i = 0; i < conns.length; i++) {
      const fencedAfter = await setFence(conns[i]!, o.namespace, false);
      promoted.push({ node: endpointText(o.passive[i]!), fencedBefore: before[i]!, fencedAfter });
      if (!fencedAfter) changes.push(`fence lifted on ${endpointText(o.passive[i]!)}`);
      if (fencedAfter) throw new OpsError('REFUSED', `node ${endpointText(o.passive[i]!)} still shows fenced=true after set-config`);
    }

    // 6. Report.
    const at = Date.now();
    const newest = receiverFinal && receiverFinal.maxSourceLutMs > 0 ? receiverFinal.maxSourceLutMs : null;
    const dataLossWindowMs = newest === null ? null : Math.max(0, at - newest);
    const nothingLost = oldActive?.fenced === true && oldActive.shipped && completed;
    return {
      rpoMs: nothingLost ? 0 : dataLossWindowMs,
      rtoMs: at - (o.outageStartMs ?? started),
      rtoFrom: o.outageStartMs !== undefined ? 'outage-start' : 'command-start',
      oldActiveMembers,
      namespace: o.namespace,
      at,
      drain,
      receiverStopped,
      receiverFinal,
      promoted,
      oldActive,
      newestSourceChangeMs: newest,
      dataLossWindowMs,
    };
  } catch (err) {
    if (changes.length === 0) throw err;
    const code = err instanceof OpsError ? err.code : 'REFUSED';
    throw new OpsError(code, `${errorText(err)} (already done: ${changes.join('; ')}; not done: the rest of the failover, run it again)`);
  } finally {
    for (const c of conns) c.close();
  }
}

export function formatFailover(r: FailoverReport): string {
  const lines: string[] = [`failover of namespace ${r.namespace} at ${new Date(r.at).toISOString()}`];
  if (r.oldActive) {
    const a = r.oldActive;
    if (!a.reachable) lines.push(`  old active ${a.node}: not reachable, NOT fenced; fence it before it takes writes again (${a.error ?? ''})`);
    else if (a.fenced) lines.push(`  old active ${a.node}: fenced${a.shipped ? ', everything it held was in Kafka before the drain' : ''}`);
    else lines.push(`  old active ${a.node}: reachable but NOT fenced: ${a.error ?? 'unknown reason'}`);
  } else lines.push('  old active: not given; fence it before it takes writes again');
  const d = r.drain;
  if (!d.receiver) lines.push('  drain: no receiver given, not measured');
  else if (d.receiverWasRunning === false) lines.push('  drain: the receiver was already stopped; messages it had not applied stay in Kafka');
  else if (d.completed) lines.push(`  drain: complete in ${formatDurationMs(d.waitedMs)} (consumer lag 0)`);
  else lines.push(`  WARNING drain: NOT complete after ${formatDurationMs(d.waitedMs)} (consumer lag ${d.consumerLag ?? '?'}); messages left in Kafka were not applied`);
  if (d.receiver) lines.push(`  receiver ${d.receiver}: ${r.receiverStopped ? 'stopped' : 'did not report stopped'}${r.receiverFinal ? `, applied ${r.receiverFinal.applied}, lost conflict ${r.receiverFinal.lostConflict}, dead-lettered ${r.receiverFinal.deadLettered}` : ''}`);
  for (const p of r.promoted) lines.push(`  promoted ${p.node}: fence ${p.fencedBefore ? 'lifted' : 'was already off'}, client writes accepted`);
  if (r.oldActiveMembers.length > 1) for (const m of r.oldActiveMembers) lines.push(`    old active member ${m.node}: ${m.fenced ? 'fenced' : 'NOT fenced'}${m.shipped ? ', shipped everything' : ''}${m.error ? ` (${m.error})` : ''}`);
  lines.push(`  RPO (data loss, measured): ${r.rpoMs === null ? 'unknown' : `${r.rpoMs} ms${r.rpoMs === 0 ? ' (nothing can be lost)' : ' at most'}`}`);
  lines.push(`  RTO (site not writable): ${r.rtoMs} ms, from ${r.rtoFrom === 'outage-start' ? 'the outage start given' : 'the start of this command (give --outage-start for the whole outage)'} to ${r.promoted.length} node(s) taking writes`);
  if (r.newestSourceChangeMs === null) lines.push('  data-loss window: unknown (no change arrived through the receiver)');
  else {
    lines.push(`  newest source change applied: ${new Date(r.newestSourceChangeMs).toISOString()}`);
    const safe = r.oldActive?.fenced && r.oldActive.shipped && r.drain.completed;
    lines.push(
      `  data-loss window: ${formatDurationMs(r.dataLossWindowMs!)} (${r.dataLossWindowMs} ms): changes on the old active after that time ${safe ? 'cannot exist (it was fenced and fully shipped)' : 'did not arrive'}`,
    );
  }
  return lines.join('\n');
}
