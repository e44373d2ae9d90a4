/**
 * Failback: bring a returning site A back from B (the active site since a failover), then switch
 * over so A is active again. Every step prints what it changed; the whole command is safe to
 * re-run (each step checks the state first) and a failure says at which step it stopped.
 *
 *  1. fence A      every member of A's cluster refuses client writes (A returns fenced).
 *  2. drain B->A   B's site has shipped everything (B ships to A: its topic and a receiver
 *                  applying it to A, given as --receiver-ba) and that receiver applied it.
 *  3. level A      per-partition checksums (as `ferry verify` does) find the keys that differ;
 *                  for each, both versions are read (info `ferry-record` on each master). A's own
 *                  client writes that B never received are the writes A acknowledged but never
 *                  shipped: they are listed (digest, set, key if stored, generation, LUT). Every
 *                  other difference is copied from B to A (a replicated write on A).
 *  4. fence B      the planned switchover starts: B refuses client writes.
 *  5. drain B->A   again, so A holds everything B accepted.
 *  6. resolve      levels A again, then applies the policy to the unshipped writes (B is fenced,
 *                  so nothing races it): `keep-b` (default) writes B's version (a tombstone where
 *                  B has none) to both sites at generation max+1 and LUT max+1, so neither
 *                  conflict rule can let A's version win when A's shipper ships it late;
 *                  `a-wins` writes A's version to B where it wins by the conflict rule, else as
 *                  keep-b; `topic` produces A's versions (the shipped-record format, key = digest)
 *                  to a Kafka topic for the operator, then keeps B's as keep-b does.
 *  7. verify       the two sites compare EQUAL, or the command stops here (A still fenced).
 *  8. unfence A    A takes client writes again: the switchover's write outage ends.
 *  9. resume A->B  the receiver applying A's topic to B (--receiver-ab) must be running; if it
 *                  is not given or not running, the command says to start it.
 *
 * State on entry decides where to start: B unfenced = from step 1; both fenced = a previous run
 * stopped inside the switchover, from step 5; A unfenced and B fenced = switchover done, from 7.
 */
import { FerryClient, PARTITION_COUNT, encodeVersion, partitionOf, type ConflictPolicyId, type RecordVersion, type UserKey } from '../store/index.js';
import { kafkajsLink, type KafkaProducer } from '../kafka/index.js';
import type { ReceiverStats } from '../receiver/receiver.js';
import { SiteLagSource, siteMembers, type SiteMember } from './site-lag.js';
import { NodeConn, OpsError, endpointText, errorText, getJson, parseKv, sleep, type Endpoint } from './util.js';
import { verifySites, type KeyDiff } from './verify.js';

/** Digests of B writes the B->A stream did not deliver listed in the report (the count is exact). */
const COPIED_B_WRITES_LISTED_MAX = 20;
/** Differing keys handled in one run (the rest are found by the next run). */
export const FAILBACK_KEYS_MAX = 100_000;
/** The receiver measures consumer lag about once a second. */
const DRAIN_POLL_MS = 200;
/** verify's re-check of differences inside failback: writes are fenced, so short. */
const VERIFY_RECHECK_MS = 300;

export const UnshippedPolicy = { KEEP_B: 'keep-b', A_WINS: 'a-wins', TOPIC: 'topic' } as const;
/** Partitions of the operator's topic when failback creates it. */
const UNSHIPPED_TOPIC_PARTITIONS = 1;
export type UnshippedPolicyId = (typeof UnshippedPolicy)[keyof typeof UnshippedPolicy];

export interface FailbackOptions {
  a: Endpoint;
  b: Endpoint;
  namespace: string;
  receiverBA: string;
  receiverAB?: string;
  policy: UnshippedPolicyId;
  /** Policy `topic`: where A's unshipped versions go. */
  unshippedTopic?: { brokers: string[]; topic: string };
  conflictPolicy: ConflictPolicyId;
  drainTimeoutMs: number;
  requestTimeoutMs: number;
  signal?: AbortSignal;
  /** One line per step change. */
  say: (line: string) => void;
}

export interface UnshippedWrite {
  digest: string;
  partition: number;
  set: string;
  /** The user key when A stored it (string/integer as text, else base64). */
  key?: string;
  generation: number;
  lutMs: number;
  tombstone: boolean;
  /** B's version of the key at the time: none, or its generation and LUT. */
  b: { generation: number; lutMs: number; tombstone: boolean; origin: string } | null;
  /** What the policy did. */
  resolution?: 'b-version-kept' | 'a-version-applied' | 'written-to-topic, b-version-kept';
}

export interface FailbackReport {
  namespace: string;
  startedAt: number;
  finishedAt: number;
  startedAtStep: number;
  policy: UnshippedPolicyId;
  copiedToA: number;
  /**
   * Of copiedToA: versions B's own clients wrote (origin local on B) that A lacked although the
   * B->A drain had finished: writes the B->A stream did not deliver (the rest are versions of
   * A's writes that A lost, e.g. to a kill -9 without commit-to-device). Levelling repairs both;
   * a count above 0 says the B->A path dropped something. Digests of the first few in
   * copiedBWriteDigests.
   */
  copiedBWrites: number;
  copiedBWriteDigests: string[];
  unshipped: UnshippedWrite[];
  /** Unshipped writes beyond FAILBACK_KEYS_MAX are not listed; re-run. */
  truncated: boolean;
  equal: boolean;
  /** From fencing B to unfencing A: neither site took client writes (null when not done in this run). */
  switchoverWriteOutageMs: number | null;
  receiverABRunning: boolean | null;
}

export class FailbackError extends OpsError {
  constructor(
    code: ConstructorParameters<typeof OpsError>[0],
    readonly step: number,
    readonly stepName: string,
    message: string,
  ) {
    super(code, `stopped at step ${step} (${stepName}): ${message}; re-run ferry failback with the same options to continue from there`);
    this.name = 'FailbackError';
  }
}

interface StoredVersion {
  set: string;
  key?: { type: number; b64: string };
  generation: number;
  lutMs: number;
  voidTimeS: number;
  tombstone: boolean;
  origin: string;
  bins: Array<{ name: string; type: number; b64: string }>;
}

/** One site during the failback: its members and a smart client. */
class SiteConn {
  private constructor(
    readonly label: string,
    readonly members: SiteMember[],
    readonly client: FerryClient,
    private readonly namespace: string,
  ) {}

  static async open(label: string, seed: Endpoint, namespace: string, timeoutMs: number): Promise<SiteConn> {
    const { members } = await siteMembers(seed, timeoutMs);
    const client = await FerryClient.connect({ hosts: members.map((m) => m.endpoint), tendIntervalMs: 0, timeoutMs });
    return new SiteConn(label, members, client, namespace);
  }

  /** fenced per member (node text -> value read back). */
  async fences(timeoutMs: number): Promise<Map<string, boolean>> {
    const out = new Map<string, boolean>();
    for (const m of this.members) {
      const conn = await NodeConn.open(m.endpoint, timeoutMs);
      try {
        out.set(endpointText(m.endpoint), parseKv(await conn.info(`get-config:context=namespace;id=${this.namespace}`)).get('fenced') === 'true');
      } finally {
        conn.close();
      }
    }
    return out;
  }

  /** Sets the fence on every member; returns the members whose fence changed. */
  async setFence(fenced: boolean, timeoutMs: number): Promise<string[]> {
    const changed: string[] = [];
    const before = await this.fences(timeoutMs);
    for (const m of this.members) {
      const node = endpointText(m.endpoint);
      if (before.get(node) === fenced) continue;
      const conn = await NodeConn.open(m.endpoint, timeoutMs);
      try {
        await conn.info(`set-config:context=namespace;id=${this.namespace};fenced=${fenced}`);
        if ((parseKv(await conn.info(`get-config:context=namespace;id=${this.namespace}`)).get('fenced') === 'true') !== fenced) {
          throw new OpsError('REFUSED', `node ${node} did not take fenced=${fenced}`);
        }
      } finally {
        conn.close();
      }
      changed.push(node);
    }
    return changed;
  }

  /** The master's copy of one record, or null. */
  async read(digestHex: string): Promise<StoredVersion | null> {
    const pid = partitionOf(Buffer.from(digestHex, 'hex'));
    const master = this.client.masterOf(this.namespace, pid);
    if (!master) throw new OpsError('UNREACHABLE', `site ${this.label}: no master known for partition ${pid}`);
    const text = await this.client.infoValue(`ferry-record:namespace=${this.namespace};digest=${digestHex}`, master);
    if (text === 'none') return null;
    if (text.startsWith('ERROR')) throw new OpsError('PROTOCOL', `site ${this.label}: ferry-record answered ${text}`);
    return JSON.parse(text) as StoredVersion;
  }

  /** Applies a version through the partition's master; throws unless it was stored. */
  async apply(v: RecordVersion, policy: ConflictPolicyId): Promise<void> {
    const r = await this.client.applyReplicated(v, policy);
    if (r.resultCode !== 0) throw new OpsError('REFUSED', `site ${this.label}: replicated write of ${v.digest.toString('hex')} answered ${r.resultCode}`);
  }

  close(): void {
    this.client.close();
  }
}

function toVersion(namespace: string, digestHex: string, s: StoredVersion): RecordVersion {
  const v: RecordVersion = {
    namespace,
    set: s.set,
    digest: Buffer.from(digestHex, 'hex'),
    generation: s.generation,
    lutMs: s.lutMs,
    voidTimeS: s.voidTimeS,
    tombstone: s.tombstone,
    bins: s.tombstone ? [] : s.bins.map((b) => ({ name: b.name, type: b.type as RecordVersion['bins'][number]['type'], bytes: Buffer.from(b.b64, 'base64') })),
  };
  if (s.key) v.key = { type: s.key.type as UserKey['type'], bytes: Buffer.from(s.key.b64, 'base64') };
  return v;
}

/** > 0 when x wins over y by the conflict rule (the receiver's, without the site tie-break). */
function wins(x: { generation: number; lutMs: number }, y: { generation: number; lutMs: number }, policy: ConflictPolicyId): number {
  const byGen = x.generation - y.generation;
  const byLut = x.lutMs - y.lutMs;
  return policy === 'generation' ? byGen || byLut : byLut || byGen;
}

function keyText(k: StoredVersion['key']): string | undefined {
  if (!k) return undefined;
  const bytes = Buffer.from(k.b64, 'base64');
  if (k.type === 3) return bytes.toString('utf8');
  if (k.type === 1 && bytes.length === 8) return bytes.readBigInt64BE(0).toString();
  return bytes.toString('base64');
}

/** A version A's clients wrote that B does not hold (B has none, an older one, or a copy of another A version). */
function isUnshipped(a: StoredVersion | null, b: StoredVersion | null): boolean {
  if (!a || a.origin !== 'local') return false;
  if (!b) return true;
  if (b.generation === a.generation && b.lutMs === a.lutMs) return false;
  // B's own client wrote the key since: B's version stands either way, A's is still unshipped.
  return true;
}

export async function failback(o: FailbackOptions): Promise<FailbackReport> {
  const startedAt = Date.now();
  let step = 0;
  let stepName = 'connect';
  const begin = (n: number, name: string): void => {
    step = n;
    stepName = name;
    if (o.signal?.aborted) throw new OpsError('INTERRUPTED', 'interrupted');
    o.say(`step ${n}/9 ${name}`);
  };
  let a: SiteConn | undefined;
  let b: SiteConn | undefined;
  const report: FailbackReport = {
    namespace: o.namespace, startedAt, finishedAt: 0, startedAtStep: 1, policy: o.policy, copiedToA: 0, copiedBWrites: 0, copiedBWriteDigests: [], unshipped: [], truncated: false, equal: false, switchoverWriteOutageMs: null, receiverABRunning: null,
  };
  try {
    a = await SiteConn.open('A', o.a, o.namespace, o.requestTimeoutMs);
    b = await SiteConn.open('B', o.b, o.namespace, o.requestTimeoutMs);
    const fencedA = [...(await a.fences(o.requestTimeoutMs)).values()];
    const fencedB = [...(await b.fences(o.requestTimeoutMs)).values()];
    const allA = fencedA.every(Boolean);
    const allB = fencedB.every(Boolean);
    const noneA = fencedA.every((f) => !f);
    report.startedAtStep = allB && noneA ? 7 : allB && allA ? 5 : 1;
    if (report.startedAtStep > 1) o.say(`state: B fenced, A ${allA ? 'fenced' : 'not fenced'}: a previous run got past step ${report.startedAtStep - 1}; continuing at step ${report.startedAtStep}`);
    let switchStart: number | undefined;

    if (report.startedAtStep === 1) {
      begin(1, 'fence A');
      const changed = await a.setFence(true, o.requestTimeoutMs);
      o.say(changed.length ? `  fenced A on ${changed.join(', ')}` : '  A was already fenced on every node');
      begin(2, 'drain B->A');
      await drain(o, 'B->A');
      begin(3, 'level A');
      await level(o, a, b, report, false);
      begin(4, 'fence B');
      switchStart = Date.now();
      const fb = await b.setFence(true, o.requestTimeoutMs);
      o.say(fb.length ? `  fenced B on ${fb.join(', ')}: neither site takes client writes until step 8` : '  B was already fenced on every node');
    }
    if (report.startedAtStep <= 5) {
      begin(5, 'drain B->A');
      await drain(o, 'B->A');
      begin(6, 'resolve');
      await level(o, a, b, report, true);
    }
    begin(7, 'verify');
    const v = await verifySites({ a: o.a, b: o.b, namespace: o.namespace, recheckMs: VERIFY_RECHECK_MS, maxList: 5, timeoutMs: Math.max(o.requestTimeoutMs, 30_000), ...(o.signal ? { signal: o.signal } : {}) });
    report.equal = v.equal;
    if (!v.equal) throw new OpsError('REFUSED', `the sites differ in ${v.differingKeys} key(s) (e.g. ${v.keys.map((k) => k.digest).join(', ')}); A stays fenced`);
    o.say(`  EQUAL: ${v.recordsA} entries on each site`);
    begin(8, 'unfence A');
    const ua = await a.setFence(false, o.requestTimeoutMs);
    if (switchStart !== undefined) report.switchoverWriteOutageMs = Date.now() - switchStart;
    o.say(ua.length ? `  A takes client writes again on ${ua.join(', ')}${report.switchoverWriteOutageMs !== null ? ` (writes were refused on both sites for ${report.switchoverWriteOutageMs} ms)` : ''}` : '  A was already unfenced');
    begin(9, 'resume A->B');
    if (!o.receiverAB) {
      report.receiverABRunning = null;
      o.say('  start the receiver that applies A\'s topic to B now (it resumes from its committed offsets); give --receiver-ab to have this step check it');
    } else {
      const st = await getJson<ReceiverStats>(`${o.receiverAB}/stats`, o.requestTimeoutMs).catch(() => null);
      report.receiverABRunning = st?.running === true;
      if (!report.receiverABRunning) throw new OpsError('REFUSED', `receiver ${o.receiverAB} is ${st ? 'stopped' : 'not reachable'}: start it (it resumes from its committed offsets)`);
      o.say(`  receiver ${o.receiverAB} is applying A's topic to B`);
    }
    report.finishedAt = Date.now();
    return report;
  } catch (err) {
    if (err instanceof FailbackError) throw err;
    const code = err instanceof OpsError ? err.code : 'REFUSED';
    throw new FailbackError(code, step, stepName, errorText(err));
  } finally {
    a?.close();
    b?.close();
    await closeTopicProducer(o);
  }
}

/** Waits until B's site has shipped everything and the B->A receiver applied it. */
async function drain(o: FailbackOptions, what: string): Promise<void> {
  const deadline = Date.now() + o.drainTimeoutMs;
  const lag = new SiteLagSource(o.b, undefined, false, o.requestTimeoutMs);
  try {
    for (;;) {
      const r = await lag.collect();
      const behind = r.total.reduce((n, t) => n + t.recordsBehind + t.recoveringPartitions, 0);
      if (!r.complete) throw new OpsError('UNREACHABLE', `a node of B does not answer: ${r.nodes.filter((n) => n.error).map((n) => `${n.node}: ${n.error}`).join('; ')}`);
      if (r.total.length === 0) throw new OpsError('REFUSED', 'B ships nothing: configure B to ship the namespace to A (an xdr destination) and run a receiver applying it to A');
      if (behind === 0) break;
      if (Date.now() > deadline) throw new OpsError('TIMEOUT', `B still has ${behind} change(s) to ship after ${o.drainTimeoutMs} ms`);
      await sleep(DRAIN_POLL_MS, o.signal);
    }
  } finally {
    lag.close();
  }
  const shippedAt = Date.now();
  for (;;) {
    const st = await getJson<ReceiverStats>(`${o.receiverBA}/stats`, o.requestTimeoutMs);
    if (!st.running) throw new OpsError('REFUSED', `receiver ${o.receiverBA} (B->A) is stopped: start it`);
    if (st.consumerLag === 0 && st.lagMeasuredAtMs > shippedAt) break;
    if (Date.now() > deadline) throw new OpsError('TIMEOUT', `receiver ${o.receiverBA} still has consumer lag ${st.consumerLag} after ${o.drainTimeoutMs} ms`);
    await sleep(DRAIN_POLL_MS, o.signal);
  }
  o.say(`  ${what}: B shipped everything and ${o.receiverBA} applied it (${Date.now() - shippedAt} ms for the receiver)`);
}

/**
 * Finds the keys that differ, copies B's version to A where A's is not an unshipped write, and
 * lists the unshipped ones; with `resolve`, also applies the policy to them.
 */
async function level(o: FailbackOptions, a: SiteConn, b: SiteConn, report: FailbackReport, resolve: boolean): Promise<void> {
  const v = await verifySites({ a: o.a, b: o.b, namespace: o.namespace, recheckMs: 0, maxList: FAILBACK_KEYS_MAX, timeoutMs: Math.max(o.requestTimeoutMs, 30_000), ...(o.signal ? { signal: o.signal } : {}) });
  report.truncated = v.differingKeys > v.keys.length;
  o.say(`  checksums: ${v.partitionsDifferingFirstPass} of ${PARTITION_COUNT} partitions differ, ${v.differingKeys} key(s)`);
  let copied = 0;
  let copiedB = 0;
  const unshipped = new Map(report.unshipped.map((u) => [u.digest, u]));
  for (const d of v.keys) {
    const [va, vb] = await Promise.all([a.read(d.digest), b.read(d.digest)]);
    if (isUnshipped(va, vb)) {
      if (!unshipped.has(d.digest)) unshipped.set(d.digest, describe(d, va!, vb));
      if (resolve) unshipped.get(d.digest)!.resolution = await resolveOne(o, a, b, d.digest, va!, vb);
      continue;
    }
    if (!vb) continue; // a tombstone-only difference verify already counts as none
    const r = await a.client.applyReplicated(toVersion(o.namespace, d.digest, vb), o.conflictPolicy);
    if (r.resultCode === 0) {
      copied++;
      if (vb.origin === 'local') {
        copiedB++;
        if (report.copiedBWriteDigests.length < COPIED_B_WRITES_LISTED_MAX) report.copiedBWriteDigests.push(d.digest);
      }
    } else if (resolve) {
      // A holds a newer version it did not write itself (a copy of one B no longer has): B's stands.
      await forceBoth(o, a, b, d.digest, va, vb);
      copied++;
    }
  }
  report.copiedToA += copied;
  report.copiedBWrites += copiedB;
  report.unshipped = [...unshipped.values()];
  const notDelivered = copiedB > 0 ? ` (${copiedB} of them written by B's clients yet missing at A after the B->A drain: the B->A stream did not deliver them; e.g. ${report.copiedBWriteDigests.slice(0, 3).join(', ')})` : '';
  o.say(`  copied ${copied} version(s) from B to A${notDelivered}; ${report.unshipped.length} write(s) A acknowledged but never shipped${resolve ? ` (policy ${o.policy})` : ' (resolved at step 6)'}`);
}

function describe(d: KeyDiff, va: StoredVersion, vb: StoredVersion | null): UnshippedWrite {
  const k = keyText(va.key);
  return {
    digest: d.digest,
    partition: d.partition,
    set: va.set,
    ...(k !== undefined ? { key: k } : {}),
    generation: va.generation,
    lutMs: va.lutMs,
    tombstone: va.tombstone,
    b: vb ? { generation: vb.generation, lutMs: vb.lutMs, tombstone: vb.tombstone, origin: vb.origin } : null,
  };
}

async function resolveOne(o: FailbackOptions, a: SiteConn, b: SiteConn, digest: string, va: StoredVersion, vb: StoredVersion | null): Promise<UnshippedWrite['resolution']> {
  if (o.policy === UnshippedPolicy.A_WINS && (!vb || wins(va, vb, o.conflictPolicy) > 0)) {
    await b.apply(toVersion(o.namespace, digest, va), o.conflictPolicy);
    return 'a-version-applied';
  }
  if (o.policy === UnshippedPolicy.TOPIC) {
    // First into the topic (a re-run after a failure only produces it again), then B's stands.
    const v = toVersion(o.namespace, digest, va);
    const msg = encodeVersion(v, 'A', partitionOf(v.digest));
    await (await topicProducer(o)).send(o.unshippedTopic!.topic, [{ key: msg.key, value: msg.value, headers: msg.headers }], 'none');
    await forceBoth(o, a, b, digest, va, vb);
    return 'written-to-topic, b-version-kept';
  }
  await forceBoth(o, a, b, digest, va, vb);
  return 'b-version-kept';
}

/** One producer per run (closed by closeTopicProducer), keyed by the options object. */
const producers = new WeakMap<FailbackOptions, Promise<KafkaProducer>>();
function topicProducer(o: FailbackOptions): Promise<KafkaProducer> {
  let p = producers.get(o);
  if (!p) {
    const t = o.unshippedTopic;
    if (!t) throw new OpsError('USAGE', 'policy topic needs --unshipped-topic and --brokers');
    p = (async () => {
      const link = kafkajsLink({ role: 'shipper', clientId: 'ferry-failback', brokers: t.brokers });
      await link.ensureTopic(t.topic, UNSHIPPED_TOPIC_PARTITIONS);
      return link.idempotentProducer();
    })();
    producers.set(o, p);
  }
  return p;
}

async function closeTopicProducer(o: FailbackOptions): Promise<void> {
  const p = producers.get(o);
  producers.delete(o);
  if (p) await (await p.catch(() => undefined))?.disconnect().catch(() => undefined);
}

/** B's version (a tombstone where B has none) at generation and LUT above both, on both sites. */
async function forceBoth(o: FailbackOptions, a: SiteConn, b: SiteConn, digest: string, va: StoredVersion | null, vb: StoredVersion | null): Promise<void> {
  const generation = Math.max(va?.generation ?? 0, vb?.generation ?? 0) + 1;
  const lutMs = Math.max(va?.lutMs ?? 0, vb?.lutMs ?? 0) + 1;
  const base: StoredVersion = vb ?? { set: va?.set ?? '', generation: 0, lutMs: 0, voidTimeS: 0, tombstone: true, origin: 'local', bins: [] };
  const v = toVersion(o.namespace, digest, { ...base, generation, lutMs });
  await b.apply(v, o.conflictPolicy);
  await a.apply(v, o.conflictPolicy);
}

export function formatFailback(r: FailbackReport): string {
  const lines = [`failback of namespace ${r.namespace}: ${r.equal ? 'sites EQUAL, A active again' : 'not finished'} (${((r.finishedAt - r.startedAt) / 1000).toFixed(1)} s, started at step ${r.startedAtStep})`];
  lines.push(`  versions copied from B to A: ${r.copiedToA}${r.copiedBWrites > 0 ? ` (${r.copiedBWrites} written by B's clients that the B->A stream had not delivered)` : ''}`);
  if (r.switchoverWriteOutageMs !== null) lines.push(`  switchover write outage (B fenced until A unfenced): ${r.switchoverWriteOutageMs} ms`);
  lines.push(`  writes A acknowledged but never shipped: ${r.unshipped.length}${r.truncated ? ' (more not listed: re-run)' : ''}, policy ${r.policy}`);
  for (const u of r.unshipped) {
    lines.push(`    ${u.digest} set=${u.set || '-'} key=${u.key ?? '-'} gen=${u.generation} lut=${new Date(u.lutMs).toISOString()}${u.tombstone ? ' (delete)' : ''} B=${u.b ? `gen ${u.b.generation} ${u.b.origin}` : 'none'} -> ${u.resolution ?? 'unresolved'}`);
  }
  if (r.receiverABRunning === null) lines.push('  A->B receiver: not checked (start it if it is not running)');
  return lines.join('\n');
}
