/**
 * One simulated cluster run: n nodes of one site (the real node assembly each, see
 * cluster-node.ts) on one Scheduler, one SimNetwork and one seed. Phases:
 * 1. workload + faults: a client with a stale partition map sends writes, increments, touches,
 *    deletes and reads to the node its map names as master (or, sometimes, any node: proxied);
 *    faults, one at a time: a node crashes (unsynced writes lost or torn) and restarts, a node
 *    stops cleanly and restarts warm, a node is partitioned away, a partial partition (two nodes
 *    cannot see each other, both see the third), message loss / delay / duplication / reordering
 *    on the network or one link;
 * 2. settle: faults stop, every node is up, the network heals, and the cluster must converge
 *    within bounded virtual time: every node on the same member list and cluster key, no
 *    migrations remaining, every replica identical to its master;
 * 3. check (cluster-checkers.ts): the ledger of client commands against the masters.
 * The same seed replays the same run: the trace hash covers every event time and decision.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecordCommand, encodeReplicatedWrite } from '../store/client/request.js';
import { computeDigest, partitionOf } from '../store/digest.js';
import type { PartitionTable } from '../store/cluster/partition-table.js';
import { seededRandom, type Random } from '../store/runtime/index.js';
import { ConflictPolicy, PARTITION_COUNT, ResultCode } from '../store/types.js';
import { decodeMsg, encodeMsgFrame } from '../store/wire/message.js';
import { PROTO_HEADER_BYTES } from '../store/wire/proto.js';
import type { Destination, Receiver } from '../receiver/receiver.js';
import { Shipper } from '../shipper/shipper.js';
import { compareSites } from './checkers.js';
import { BalanceChecker } from './balance-checker.js';
import { checkClusterLedger, checkMembership, checkReads, checkReplicas, partitionImage, type KeyOp } from './cluster-checkers.js';
import { APPLY_TIMEOUT_MS, CLIENT_TIMEOUT_MS, FAULT_WINDOW_MS_MAX, OPS_IN_FLIGHT_MAX, SETTLE_MS_MAX, errorText, runDriver, runFaults, simReceiver, simResult, startRun, type SimResult } from './driver.js';
import { SimKafkaLog } from './kafka-log.js';
import { SimClusterNode } from './cluster-node.js';
import { NETWORK_FAULTS_NONE, SimNetwork } from './network.js';
import { xdrConfig } from './run.js';
import { SIM_EPOCH_MS, type Scheduler } from './scheduler.js';
import { newDevice } from './site.js';
import { SIM_NAMESPACE, SIM_SET, Workload, type SimCommand } from './workload.js';

export const CLUSTER_NODES_DEFAULT = 3;
export const CLUSTER_NODES_MAX = 8;

/**
 * A fixed fault script instead of random faults: the agreement scenario (partial-partition), or
 * a split that heals before the round it started has finished its migrations (short-split).
 */
export type ClusterScenario = 'random' | 'partial-partition' | 'short-split';
export const CLUSTER_SCENARIOS: readonly ClusterScenario[] = ['random', 'partial-partition', 'short-split'];

export interface ClusterSimOptions {
  seed: number;
  ops: number;
  nodes?: number;
  faults?: boolean;
  scenario?: ClusterScenario;
  /** Also replicate to a second site (a cluster of the same size) through the shipper, Kafka and the receiver. */
  xdr?: boolean;
  /** Fail on the no-balloon invariant (balance-checker.ts; default on). */
  balanceChecker?: boolean;
  /** The no-balloon factor (default 1.1; a test lowers it to see the checker report). */
  balanceFactor?: number;
  log?: (line: string) => void;
}

/** The XDR half of a run: site B's nodes, the Kafka log, the receiver and A's shippers. */
interface Xdr {
  log: SimKafkaLog;
  bNodes: SimClusterNode[];
  bClient: Client;
  receiver: Receiver | undefined;
  /** The current incarnation's shipper of each A node. */
  shippers: Map<string, Shipper>;
}

/** Largest virtual gap between client commands, ms. */
const OP_GAP_MS_MAX = 30;
/** The client refreshes its partition map from some node this often (so it is often stale). */
const MAP_REFRESH_MS = 1500;
/** Chance a command goes to a random node instead of the map's master (it gets proxied). */
const RANDOM_NODE_PCT = 20;
/** Chance a command is a read. */
const READ_PCT = 20;
/** A crashed node stays down this long at most. */
const DOWN_MS_MAX = 4000;
/** After a partition heals, writes this long after still count as written in a split. */
const REFORM_MS = 5000;

interface World {
  sched: Scheduler;
  net: SimNetwork;
  nodes: SimClusterNode[];
  errors: string[];
  counters: Record<string, number>;
  /** [start, end] virtual-time windows in which the cluster may have been split. */
  splits: Array<[number, number]>;
  /** Invariant violations seen while the run was going (not only at the end). */
  violations: string[];
  /** The no-balloon checker, sampled while the driver runs (balance-checker.ts). */
  balance: BalanceChecker;
  balanceSampledMs: number;
}

/** The no-balloon checker samples at most this often (virtual ms; it reads every partition of every node). */
const BALANCE_SAMPLE_MS = 200;

/** Samples the no-balloon checker when the driver wakes anyway (no events of its own: the trace stays as it was). */
function sampleBalance(w: World): void {
  if (w.sched.nowMs - w.balanceSampledMs < BALANCE_SAMPLE_MS) return;
  w.balanceSampledMs = w.sched.nowMs;
  w.balance.sample(w.sched.nowMs);
}

const count = (w: World, name: string): void => void (w.counters[name] = (w.counters[name] ?? 0) + 1);

function nodeIds(n: number): string[] {
  // Hex ids in ascending order: the lowest is the agreement's principal when all see each other.
  return Array.from({ length: n }, (_, i) => `A${i + 1}`);
}

function upNodes(w: World): SimClusterNode[] {
  return w.nodes.filter((n) => n.up);
}

async function crashAndRestart(w: World, r: Random, node: SimClusterNode): Promise<void> {
  count(w, 'crashes');
  // Usually while writes are not yet synced: that is where a crash can hurt.
  const waitUntil = w.sched.nowMs + (r.int(4) === 0 ? 0 : 300);
  while (node.device.unsyncedWrites === 0 && w.sched.nowMs < waitUntil) await w.sched.sleep('faults', 1);
  w.sched.note(`crash ${node.owner} unsynced=${node.device.unsyncedWrites}`);
  node.crash();
  await w.sched.sleep('faults', 200 + r.int(DOWN_MS_MAX));
  await node.start();
}

async function cleanRestart(w: World, r: Random, node: SimClusterNode): Promise<void> {
  count(w, 'cleanRestarts');
  await node.stop();
  await w.sched.sleep('faults', 100 + r.int(1000));
  await node.start();
}

/** A partition lasts a while, then heals; the window is recorded as a possible split. */
async function split(w: World, r: Random, pairs: Array<[string, string]>, name: string): Promise<void> {
  count(w, name);
  const start = w.sched.nowMs;
  w.net.cut(...pairs);
  w.sched.note(`cut ${pairs.map((p) => p.join('-')).join(',')}`);
  await w.sched.sleep('faults', 500 + r.int(FAULT_WINDOW_MS_MAX));
  w.net.heal();
  w.sched.note('heal');
  w.splits.push([start, w.sched.nowMs + REFORM_MS]);
}

async function injectFault(w: World, r: Random): Promise<void> {
  const kind = r.int(8);
  const hosts = w.nodes.map((n) => n.host);
  const node = w.nodes[r.int(w.nodes.length)]!;
  w.sched.note(`fault ${kind} ${node.host}`);
  switch (kind) {
    case 0:
    case 1:
      return crashAndRestart(w, r, node);
    case 2:
      return cleanRestart(w, r, node);
    case 3:
      return split(w, r, hosts.filter((h) => h !== node.host).map((h): [string, string] => [node.host, h]), 'isolations');
    case 4: {
      const others = hosts.filter((h) => h !== node.host);
      const other = others[r.int(others.length)]!;
      return split(w, r, [[node.host, other]], 'partialPartitions');
    }
    case 5: {
      count(w, 'lossWindows');
      const lossPct = 5 + r.int(20);
      const one = r.int(2) === 0;
      const other = hosts.filter((h) => h !== node.host)[0]!;
      if (one) w.net.setLinkFaults(node.host, other, { lossPct });
      else w.net.faults = { ...w.net.faults, lossPct };
      // Loss long enough to miss heartbeats counts as a possible split.
      const start = w.sched.nowMs;
      await w.sched.sleep('faults', 200 + r.int(FAULT_WINDOW_MS_MAX));
      w.net.clearLinkFaults();
      w.net.faults = { ...NETWORK_FAULTS_NONE };
      w.splits.push([start, w.sched.nowMs + REFORM_MS]);
      return;
    }
    default: {
      count(w, 'messyWindows');
      // No duplication: the fabric is TCP, which never delivers a frame twice (see docs/cluster.md).
      w.net.faults = { delayMsMin: 1, delayMsMax: 5 + r.int(60), lossPct: 0, duplicatePct: 0, reorderPct: 20 };
      await w.sched.sleep('faults', 200 + r.int(FAULT_WINDOW_MS_MAX));
      w.net.faults = { ...NETWORK_FAULTS_NONE };
    }
  }
}

/** Invariant during a run: a node's member list is a clique of the network (all see each other). */
function checkCliques(w: World, label: string): void {
  for (const n of upNodes(w)) {
    const ids = n.running?.cluster?.heartbeat.snapshot().members.map((m) => m.nodeId) ?? [];
    const hosts = ids.map((id) => w.nodes.find((x) => x.nodeId === id)!.host);
    for (let i = 0; i < hosts.length; i++) {
      for (let j = i + 1; j < hosts.length; j++) {
        if (w.net.isCut(hosts[i]!, hosts[j]!)) w.violations.push(`${label}: ${n.nodeId}'s member list [${ids.join(',')}] holds ${hosts[i]} and ${hosts[j]}, which cannot reach each other`);
      }
    }
  }
}

/** The agreement scenario: A1 and A3 cannot see each other, both see A2; then it heals. */
async function partialPartitionScenario(w: World): Promise<void> {
  await w.sched.sleep('faults', 1000);
  const [a, b, c] = w.nodes.map((n) => n.host);
  w.net.cut([a!, c!]);
  w.sched.note(`cut ${a}-${c}`);
  const start = w.sched.nowMs;
  // Long past the heartbeat timeout: membership must have settled on cliques.
  await w.sched.sleep('faults', 6000);
  checkCliques(w, 'partial partition');
  const views = upNodes(w).map((n) => `${n.nodeId}:[${n.running?.cluster?.heartbeat.snapshot().members.map((m) => m.nodeId).join(',')}]`);
  w.sched.note(`views ${views.join(' ')}`);
  if (b === undefined) return;
  w.net.heal();
  w.splits.push([start, w.sched.nowMs + REFORM_MS]);
}

/** short-split: the heal comes this long after every node's member list shows its own side only. */
const SHORT_SPLIT_HOLD_MS = 100;
/** short-split: the network's delay while split (slow links: the fills take longer than the split). */
const SHORT_SPLIT_DELAY_MS: readonly [number, number] = [30, 60];
/** short-split: how long the scenario waits for the sides to form at most. */
const SHORT_SPLIT_FORM_MS_MAX = 10_000;

/**
 * The short-split scenario: the first half of the nodes and the second half cannot see each
 * other; once every node's member list holds only its side (both sides are clusters, each
 * serving and filling the partitions it masters), the network heals shortly after, before the
 * fills finish. Each side acknowledged writes the other lacks; the re-formed cluster must merge
 * them (the copies' lineages differ), not treat both sides' copies as one.
 */
async function shortSplitScenario(w: World): Promise<void> {
  await w.sched.sleep('faults', 1000);
  const half = Math.floor(w.nodes.length / 2);
  const left = w.nodes.slice(0, half);
  const right = w.nodes.slice(half);
  const pairs: Array<[string, string]> = [];
  for (const a of left) for (const b of right) pairs.push([a.host, b.host]);
  const start = w.sched.nowMs;
  w.net.cut(...pairs);
  w.net.faults = { ...NETWORK_FAULTS_NONE, delayMsMin: SHORT_SPLIT_DELAY_MS[0], delayMsMax: SHORT_SPLIT_DELAY_MS[1] };
  w.sched.note(`cut ${left.map((n) => n.nodeId).join(',')} | ${right.map((n) => n.nodeId).join(',')}`);
  const sideOf = (id: string): SimClusterNode[] => (left.some((n) => n.nodeId === id) ? left : right);
  const formed = (): boolean =>
    w.nodes.every((n) => {
      const ids = n.running?.cluster?.heartbeat.snapshot().members.map((m) => m.nodeId) ?? [];
      const side = sideOf(n.nodeId);
      return ids.length === side.length && ids.every((id) => side.some((x) => x.nodeId === id));
    });
  while (!formed() && w.sched.nowMs - start < SHORT_SPLIT_FORM_MS_MAX) await w.sched.sleep('faults', 1);
  if (!formed()) w.violations.push(`short split: the sides did not form within ${SHORT_SPLIT_FORM_MS_MAX} ms`);
  const owed = w.nodes.map((n) => n.running?.cluster?.migrationsRemaining() ?? -1);
  w.sched.note(`sides formed; migrations remaining ${owed.join(',')}`);
  await w.sched.sleep('faults', SHORT_SPLIT_HOLD_MS);
  w.net.heal();
  const lineages = (): string => w.nodes.map((n) => `${n.nodeId}:${n.running?.cluster?.roles?.lineage?.() ?? '?'}`).join(' ');
  w.sched.note(`heal; migrations remaining ${w.nodes.map((n) => n.running?.cluster?.migrationsRemaining() ?? -1).join(',')}; lineages ${lineages()}`);
  // The links stay slow until the cluster has re-formed, so the sides' fills are still going then.
  const healed = w.sched.nowMs;
  const whole = (): boolean => w.nodes.every((n) => (n.running?.cluster?.heartbeat.snapshot().members.length ?? 0) === w.nodes.length);
  while (!whole() && w.sched.nowMs - healed < SHORT_SPLIT_FORM_MS_MAX) await w.sched.sleep('faults', 1);
  w.net.faults = { ...NETWORK_FAULTS_NONE };
  w.sched.note(`re-formed; lineages ${lineages()}`);
  w.counters['shortSplitOwedAtHeal'] = w.nodes.reduce((s, n) => s + Math.max(0, n.running?.cluster?.migrationsRemaining() ?? 0), 0);
  w.splits.push([start, w.sched.nowMs + REFORM_MS]);
}

class Client {
  #table: PartitionTable | undefined;
  #refreshedMs = -Infinity;
  inFlight = 0;
  constructor(
    private readonly w: World,
    private readonly r: Random,
    private readonly nodes: readonly SimClusterNode[] = w.nodes,
  ) {}

  /** The node this client sends a command for pid to: its map's master, or any node. */
  target(pid: number): SimClusterNode | undefined {
    const w = this.w;
    const up = this.nodes.filter((n) => n.up);
    if (up.length === 0) return undefined;
    if (w.sched.nowMs - this.#refreshedMs >= MAP_REFRESH_MS) {
      const from = up[this.r.int(up.length)]!;
      this.#table = from.running?.cluster?.table(SIM_NAMESPACE);
      this.#refreshedMs = w.sched.nowMs;
    }
    if (this.r.int(100) < RANDOM_NODE_PCT || !this.#table) return this.nodes[this.r.int(this.nodes.length)];
    const master = this.#table.nodeAt(pid, 0);
    return this.nodes.find((n) => n.nodeId === master);
  }

  /** Sends one command; resolves with its result code and generation, or 'timeout' / 'refused'. */
  async send(frame: Buffer, pid: number): Promise<{ code: number; generation: number } | 'timeout' | 'refused'> {
    const w = this.w;
    const node = this.target(pid);
    await w.sched.sleep('client', w.net.delayMs());
    const service = node?.up ? node.service : undefined;
    if (!node || !service) return 'refused';
    const timeout = w.sched.sleep('client', CLIENT_TIMEOUT_MS).then(() => 'timeout' as const);
    const reply = await Promise.race([service.request(frame), timeout]);
    if (reply === 'timeout') return reply;
    await w.sched.sleep('client', w.net.delayMs());
    const m = decodeMsg(reply.subarray(PROTO_HEADER_BYTES));
    return { code: m.resultCode, generation: m.generation };
  }
}

/** The workload's commands plus reads. */
type ClusterCommand = SimCommand | (Omit<SimCommand, 'kind'> & { kind: 'read' });

function readCommand(wl: Workload): ClusterCommand {
  const key = wl.keyOf();
  return { kind: 'read', key, cmd: { namespace: SIM_NAMESPACE, set: SIM_SET, digest: computeDigest(SIM_SET, key), ops: [] } };
}

async function runWorkload(w: World, r: Random, ops: number, ledger: Map<string, KeyOp[]>, reads: Map<string, KeyOp[]>): Promise<void> {
  const wl = new Workload(r, false);
  const client = new Client(w, seededRandom(r.u32()));
  for (let i = 0; i < ops; i++) {
    await w.sched.sleep('client', r.int(OP_GAP_MS_MAX + 1));
    sampleBalance(w);
    while (client.inFlight >= OPS_IN_FLIGHT_MAX) await w.sched.sleep('client', 5);
    const c: ClusterCommand = r.int(100) < READ_PCT ? readCommand(wl) : wl.next();
    const enc = encodeRecordCommand(c.cmd);
    const frame = encodeMsgFrame(enc.header, enc.fields, enc.ops);
    const op: KeyOp = { id: i, kind: c.kind, key: c.key, digest: c.cmd.digest, issuedMs: w.sched.nowMs, doneMs: Infinity, outcome: 'maybe', generation: 0, ...(c.bins ? { bins: c.bins } : {}) };
    client.inFlight++;
    void client.send(frame, partitionOf(c.cmd.digest)).then(
      (res) => {
        client.inFlight--;
        const label = typeof res === 'string' ? res : String(res.code);
        count(w, `${c.kind}:${label}`);
        if (c.kind === 'read') {
          if (typeof res === 'string') return;
          op.doneMs = w.sched.nowMs;
          op.code = res.code;
          const list = reads.get(c.key) ?? [];
          list.push(op);
          reads.set(c.key, list);
          return;
        }
        if (res === 'refused') op.outcome = 'no';
        else if (res !== 'timeout') {
          op.doneMs = w.sched.nowMs;
          op.generation = res.generation;
          // Codes that say the command did not write; anything else may have (timeouts, server errors).
          if (res.code === ResultCode.OK) op.outcome = 'ok';
          else if (res.code === ResultCode.NOT_FOUND || res.code === ResultCode.KEY_BUSY || res.code === ResultCode.UNAVAILABLE) op.outcome = 'no';
        }
        w.sched.note(`done ${c.kind} ${c.key} ${label} gen=${op.generation}`);
        const list = ledger.get(c.key) ?? [];
        list.push(op);
        ledger.set(c.key, list);
      },
      (err: unknown) => {
        client.inFlight--;
        w.errors.push(`command ${c.kind} ${c.key} threw: ${errorText(err)}`);
      },
    );
  }
  while (client.inFlight > 0) await w.sched.sleep('client', 10);
}

/** Converged: every node up, one member list, no migrations left, replicas equal to masters; with XDR, B caught up. */
function converged(w: World, x: Xdr | undefined): boolean {
  const site = (nodes: SimClusterNode[]): boolean => checkMembership(nodes).length === 0 && nodes.every((n) => n.running?.cluster?.migrationsRemaining() === 0) && checkReplicas(nodes, 1).length === 0;
  if (!site(w.nodes)) return false;
  if (!x) return true;
  if ([...x.shippers.values()].some((sh) => sh.stats().some((s) => s.recordsBehind > 0 || s.recoveringPartitions > 0))) return false;
  return site(x.bNodes) && compareSites(siteImage(w.nodes), siteImage(x.bNodes), 1).length === 0;
}

/** Every record of a site as its masters hold it (per the first running node's table). */
function siteImage(nodes: readonly SimClusterNode[]): Map<string, string> {
  const out = new Map<string, string>();
  const table = nodes.find((n) => n.running?.cluster)?.running?.cluster?.table(SIM_NAMESPACE);
  if (!table) return out;
  const byId = new Map(nodes.map((n) => [n.nodeId, n]));
  for (let pid = 0; pid < PARTITION_COUNT; pid++) for (const [d, v] of partitionImage(byId.get(table.nodeAt(pid, 0))!, pid)) out.set(d, v);
  return out;
}

/** B as the receiver reaches it: a replicated write sent through a client to B's master. */
function destinationB(x: Xdr): Destination {
  return {
    applyReplicated: async (v, policy) => {
      const enc = encodeReplicatedWrite(v, policy, APPLY_TIMEOUT_MS);
      const res = await x.bClient.send(encodeMsgFrame(enc.header, enc.fields, enc.ops), partitionOf(v.digest));
      return { resultCode: typeof res === 'string' ? ResultCode.TIMEOUT : res.code };
    },
    close: () => undefined,
  };
}

function setUpXdr(w: World, root: Random, dataRoot: string): Xdr {
  const n = w.nodes.length;
  const hosts = Array.from({ length: n }, (_, i) => `b${i + 1}`);
  const bNodes = hosts.map((h, i) => {
    const seed = root.u32();
    return new SimClusterNode(w.sched, w.net, `B${i + 1}`, h, hosts.filter((x) => x !== h), join(dataRoot, h), newDevice(w.sched, `${h}#1`, seed), seed, 'sim-b');
  });
  const x: Xdr = { log: new SimKafkaLog(w.sched, seededRandom(root.u32())), bNodes, bClient: undefined as unknown as Client, receiver: undefined, shippers: new Map() };
  x.bClient = new Client(w, seededRandom(root.u32()), bNodes);
  let shipperSeq = 0;
  for (const node of w.nodes) {
    node.extensions = (owner) => {
      const sh = new Shipper(xdrConfig(false), () => undefined, { clock: w.sched.clock, timers: w.sched.timersFor(owner), random: seededRandom(1000 + ++shipperSeq), kafka: x.log.linkFor(owner) });
      x.shippers.set(node.nodeId, sh);
      return [sh];
    };
  }
  return x;
}

async function startReceiver(w: World, x: Xdr): Promise<void> {
  x.receiver = simReceiver(w.sched, x.log, 'R#1', 101, ConflictPolicy.GENERATION, () => destinationB(x));
  await x.receiver.start();
}

export async function runClusterSimulation(o: ClusterSimOptions): Promise<SimResult> {
  const n = o.nodes ?? CLUSTER_NODES_DEFAULT;
  if (!Number.isInteger(n) || n < 2 || n > CLUSTER_NODES_MAX) throw new RangeError(`a simulated cluster has 2 to ${CLUSTER_NODES_MAX} nodes, not ${n}`);
  const { sched, root, rWork, rFaults } = startRun(o);
  const net = new SimNetwork(sched, seededRandom(root.u32()));
  const dataRoot = mkdtempSync(join(tmpdir(), 'ferry-simc-'));
  const ids = nodeIds(n);
  const hosts = ids.map((_, i) => `n${i + 1}`);
  const nodes = ids.map((id, i) => {
    const seed = root.u32();
    return new SimClusterNode(sched, net, id, hosts[i]!, hosts.filter((h) => h !== hosts[i]), join(dataRoot, hosts[i]!), newDevice(sched, `${hosts[i]}#1`, seed), seed);
  });
  const w: World = { sched, net, nodes, errors: [], counters: {}, splits: [], violations: [], balance: new BalanceChecker(nodes, o.balanceFactor), balanceSampledMs: -Infinity };
  for (const node of nodes) node.onTable = (t) => w.balance.noteTable(node.nodeId, t);
  const x = o.xdr ? setUpXdr(w, root, dataRoot) : undefined;
  const ledger = new Map<string, KeyOp[]>();
  const reads = new Map<string, KeyOp[]>();
  const failures: string[] = [];
  const { done, phase } = await runDriver(sched, w.errors, failures, async (state) => {
    await Promise.all([...nodes, ...(x?.bNodes ?? [])].map((node) => node.start()));
    if (x) await startReceiver(w, x);
    state.phase = 'workload';
    let workloadDone = false;
    const scenario = o.scenario ?? 'random';
    const faults = o.faults === false ? Promise.resolve() : scenario === 'partial-partition' ? partialPartitionScenario(w) : scenario === 'short-split' ? shortSplitScenario(w) : runFaults(sched, rFaults, () => workloadDone, () => injectFault(w, rFaults));
    await runWorkload(w, rWork, o.ops, ledger, reads);
    workloadDone = true;
    await faults;
    state.phase = 'settle';
    net.heal();
    net.clearLinkFaults();
    net.faults = { ...NETWORK_FAULTS_NONE };
    for (const node of nodes) if (!node.up) await node.start();
    const settleUntil = sched.nowMs + SETTLE_MS_MAX;
    while (!converged(w, x) && sched.nowMs < settleUntil) {
      await sched.sleep('client', 500);
      sampleBalance(w);
    }
    state.phase = 'check';
  });
  const now = sched.nowMs;
  if (done && phase === 'check') {
    failures.push(...checkMembership(nodes).map((s) => `membership: ${s}`));
    const remaining = nodes.map((node) => node.running?.cluster?.migrationsRemaining() ?? -1);
    if (remaining.some((r) => r !== 0)) failures.push(`migrations: still remaining after ${SETTLE_MS_MAX} ms of quiet: ${remaining.join(',')}`);
    failures.push(...checkReplicas(nodes).map((s) => `replica != master: ${s}`));
    failures.push(...checkClusterLedger(nodes, ledger, w.splits).map((s) => `ledger: ${s}`));
    failures.push(...checkReads(ledger, reads, w.splits, ResultCode.NOT_FOUND).map((s) => `read: ${s}`));
    if (x) {
      failures.push(...checkMembership(x.bNodes).map((s) => `B membership: ${s}`));
      failures.push(...checkReplicas(x.bNodes).map((s) => `B replica != master: ${s}`));
      failures.push(...compareSites(siteImage(nodes), siteImage(x.bNodes)).map((s) => `B != A: ${s}`));
    }
  }
  failures.push(...w.violations, ...w.errors);
  if (o.balanceChecker !== false) failures.push(...w.balance.violations);
  const summary: Record<string, number | string> = {
    nodes: n,
    virtualMs: now - SIM_EPOCH_MS,
    events: sched.executed,
    keys: ledger.size,
    netSent: net.stats.sent,
    netDropped: net.stats.dropped,
    netDuplicated: net.stats.duplicated,
    deviceLost: nodes.reduce((s, node) => s + node.device.stats.lost, 0),
    deviceTorn: nodes.reduce((s, node) => s + node.device.stats.torn, 0),
    balanceSamples: w.balance.samples,
    balanceStablePoints: w.balance.stablePoints,
    balanceWorstRatio: Math.round(w.balance.worstRatio * 100) / 100,
    ...Object.fromEntries(Object.entries(w.counters).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  };
  if (x) summary.produced = x.log.stats.produced;
  for (const node of [...nodes, ...(x?.bNodes ?? [])]) sched.kill(node.owner);
  sched.kill('R#1');
  rmSync(dataRoot, { recursive: true, force: true });
  return simResult(o.seed, sched, failures, summary);
}
