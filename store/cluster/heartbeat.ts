/**
 * Heartbeat and membership. Every `intervalMs` a node sends a pulse to every heartbeat endpoint
 * it knows (its seeds, plus every endpoint the pulses it receives mention); a peer whose pulses
 * stop for `intervalMs * timeoutCount` is gone. The member list is this node plus every live
 * peer; because pulses carry each sender's adjacency (the peers it hears), a node that reaches
 * one member learns and connects to all of them, so on a fully connected network every node
 * converges on the same member list and so the same cluster key (derived from the list).
 *
 * Agreement (partial partitions): "every live peer" is not a cluster when A hears B, B hears C
 * and A does not hear C. Each pulse also carries the ids the sender hears and the member list it
 * uses with that list's principal. A node follows the lowest-id live principal whose proposed list
 * includes it and whose members it all hears; failing that it computes a clique itself (itself
 * first, then its current members, then the other live peers in id order, each added only if it
 * and every node already taken hear each other, skipping peers already in a lower principal's
 * cluster without it; a peer whose list names other members comes with all of them, or waits if
 * it is not a current member, so part of a cluster is never taken away from it): if it is
 * the clique's lowest id it is that clique's principal and proposes it; otherwise (or while a
 * live peer does not list it yet) it waits for that node's proposal, keeping its current
 * members that are still live. So only a clique
 * becomes a cluster, every member of a cluster uses its principal's list, and a node no clique
 * wants forms a cluster of its own. Like Aerospike's Paxos round led by a principal, simpler:
 * the proposal rides on the pulses and there is no separate commit step. `integrity` = every
 * member announces the cluster key we use, which `cluster-stable` reports.
 *
 * Quiesce: a node told to quiesce (before a planned restart) says so in its pulses; every node
 * puts the flag in the member it builds for it, so the member list, the cluster key and the
 * partition table change on every node alike (partition-table.ts moves it to the end of every
 * succession) and the change starts a rebalance round like any membership change. The flag is
 * not persisted: a restarted node comes back active.
 *
 * Pulses whose cluster name differs from ours are refused: the peer never becomes a member,
 * both sides log it (once per peer and minute), and the sender is told why.
 *
 * Concurrency: single event loop; all state changes happen in message and timer callbacks.
 */
import assert from 'node:assert/strict';
import { systemRandom, systemTimers, type Clock, type Random, type TimerHandle, type Timers } from '../runtime/index.js';
import { clusterKeyOf, compareIds, validateMembers, type Member } from './partition-table.js';
import type { Endpoint, FabricConnection, FabricListener, Transport } from './transport.js';

export const HEARTBEAT_INTERVAL_MS_DEFAULT = 150;
export const HEARTBEAT_TIMEOUT_COUNT_DEFAULT = 10;
/** A learned (not seed) endpoint whose node has been gone this many node timeouts is dropped. */
const FORGET_TIMEOUTS = 10;
/**
 * A peer whose heartbeat endpoint refused this many connects in a row (nothing listens there:
 * its process is gone) is declared gone without waiting for the node timeout, once its last
 * pulse is older than REFUSED_GONE_INTERVALS intervals. A partition or a slow peer never refuses
 * (connects time out or succeed), so only a dead process is detected early.
 */
const REFUSED_CONNECTS_GONE = 2;
const REFUSED_GONE_INTERVALS = 2;
/** Repeated refusal logs about one peer are held back for this long. */
const REFUSAL_LOG_EVERY_MS = 60_000;
/** A peer may advertise at most this many adjacent nodes (the cluster size limit is lower). */
const ADJACENCY_MAX = 256;
/**
 * Version of the fabric messages (replica writes, migrations, proxy, rebalance). A node whose
 * pulses carry another version is refused like another cluster-name: the two could form a
 * cluster and then fail every replica write and migration between them. Pulses without one come
 * from nodes before version 2 (REPLICA_WRITE did not carry its sender's id). Version 3: one
 * REPLICA_ACK carries every acknowledgement due on a connection at once (version 2: one each).
 */
export const FABRIC_PROTOCOL_VERSION = 3;
/** The version of a pulse that carries none. */
const FABRIC_PROTOCOL_VERSION_UNSTATED = 1;
/** Fabric message kinds (first byte of a frame). */
export const FabricKind = { PULSE: 1, REFUSED: 2, PROXY_REQUEST: 3, PROXY_RESPONSE: 4, REPLICA_WRITE: 5, REPLICA_ACK: 6 } as const;

export interface HeartbeatOptions {
  nodeId: string;
  clusterName: string;
  rackId?: number;
  /** Where this node listens for heartbeats (host may be a wildcard; see advertise). */
  listen: Endpoint;
  /** Heartbeat host other nodes should use; default: the listen host. */
  advertiseHost?: string;
  /** Client-facing service address this node announces (peers-clear-std); read at each pulse. */
  service: () => Endpoint;
  seeds: readonly Endpoint[];
  intervalMs?: number;
  timeoutCount?: number;
  /** The fabric protocol version this node speaks (default FABRIC_PROTOCOL_VERSION; tests set another). */
  fabricVersion?: number;
  transport: Transport;
  clock: Clock;
  timers?: Timers;
  random?: Random;
  log?: (level: 'info' | 'warn', msg: string, extra?: Record<string, unknown>) => void;
}

export interface PeerInfo {
  nodeId: string;
  rackId?: number;
  quiesced?: true;
  heartbeat: Endpoint;
  service: Endpoint;
  /** Cluster key the peer last announced. */
  clusterKey: string;
}

interface Pulse {
  v: 1;
  nodeId: string;
  /** Random per process: tells a restarted node or a duplicate id apart from an echo. */
  incarnation: string;
  clusterName: string;
  /** The sender's FABRIC_PROTOCOL_VERSION; absent from nodes before version 2. */
  fabric?: number;
  rackId?: number;
  /** Present (true) while the sender is quiesced. */
  quiesced?: true;
  heartbeat: Endpoint;
  service: Endpoint;
  clusterKey: string;
  adjacency: Array<{ nodeId: string; heartbeat: Endpoint }>;
  /** Ids of every peer the sender hears (member or not); absent from older nodes. */
  hears?: string[];
  /** The member list the sender uses, and its principal (its lowest id). */
  members?: string[];
  principal?: string;
}

interface PeerState extends PeerInfo {
  /** epKey(heartbeat): its OutLink's key, kept so a send does not build it again. */
  outKey: string;
  lastSeenMs: number;
  incarnation: string;
  hears: ReadonlySet<string>;
  members: readonly string[];
  principal: string;
}

export interface MembershipSnapshot {
  members: Member[];
  clusterKey: string;
  /** Goes up by one with every membership change seen by this process (starts at 1). */
  generation: number;
}

interface OutLink {
  endpoint: Endpoint;
  conn?: FabricConnection;
  seed: boolean;
  lastUsefulMs: number;
  /** Connects refused in a row since the last pulse from the node at this endpoint. */
  refusedConnects: number;
}

type FrameHandler = (payload: Buffer, reply: (kind: number, payload: Buffer) => void) => void;

const epKey = (e: Endpoint): string => `${e.host}:${e.port}`;

export class Heartbeat {
  readonly #o: Required<Pick<HeartbeatOptions, 'intervalMs' | 'timeoutCount'>> & HeartbeatOptions;
  readonly #incarnation: string;
  readonly #peers = new Map<string, PeerState>();
  /** Outgoing connections by endpoint; seeds are never forgotten. */
  readonly #out = new Map<string, OutLink>();
  /** Endpoints that turned out to be this node. */
  readonly #self = new Set<string>();
  readonly #refusalLoggedMs = new Map<string, number>();
  readonly #handlers = new Map<number, FrameHandler>();
  readonly #listeners: Array<(s: MembershipSnapshot) => void> = [];
  #snapshot: MembershipSnapshot;
  #listener: FabricListener | undefined;
  #timer: TimerHandle | undefined;
  #stopped = false;
  #heartbeatPort = 0;
  #quiesced = false;
  readonly #fabricVersion: number;
  readonly counters = { pulses_sent: 0, pulses_received: 0, refused_cluster_name: 0, refused_fabric_version: 0, membership_changes: 0 };

  constructor(o: HeartbeatOptions) {
    const intervalMs = o.intervalMs ?? HEARTBEAT_INTERVAL_MS_DEFAULT;
    const timeoutCount = o.timeoutCount ?? HEARTBEAT_TIMEOUT_COUNT_DEFAULT;
    assert.ok(Number.isInteger(intervalMs) && intervalMs >= 10, 'heartbeat interval of at least 10 ms');
    assert.ok(Number.isInteger(timeoutCount) && timeoutCount >= 3, 'heartbeat timeout of at least 3 intervals');
    this.#o = { ...o, intervalMs, timeoutCount };
    this.#fabricVersion = o.fabricVersion ?? FABRIC_PROTOCOL_VERSION;
    const random = o.random ?? systemRandom;
    this.#incarnation = [random.u32(), random.u32()].map((x) => x.toString(16).padStart(8, '0')).join('');
    const self = this.#selfMember();
    this.#snapshot = { members: [self], clusterKey: clusterKeyOf([self]), generation: 1 };
    for (const s of o.seeds) this.#out.set(epKey(s), { endpoint: s, seed: true, lastUsefulMs: o.clock.nowMs(), refusedConnects: 0 });
    this.#handlers.set(FabricKind.PULSE, (p, reply) => this.#onPulse(p, reply));
    this.#handlers.set(FabricKind.REFUSED, (p) => this.#onRefused(p));
  }

  get #timers(): Timers {
    return this.#o.timers ?? systemTimers;
  }

  get nodeTimeoutMs(): number {
    return this.#o.intervalMs * this.#o.timeoutCount;
  }

  /** The service address this node announces. */
  selfService(): Endpoint {
    return this.#o.service();
  }

  /** The seeds this node was started with (configured and remembered). */
  get seeds(): readonly Endpoint[] {
    return this.#o.seeds;
  }

  get heartbeatPort(): number {
    return this.#heartbeatPort;
  }

  async start(): Promise<void> {
    if (isWildcard(this.#advertised().host)) {
      this.#o.log?.('warn', `heartbeat listens on ${this.#o.listen.host} and no advertise address is set: peers cannot learn how to reach this node (set heartbeat.advertise-address)`);
    }
    this.#listener = await this.#o.transport.listen(this.#o.listen, (conn) => this.#serve(conn));
    this.#heartbeatPort = this.#listener.port;
    this.#timer = this.#timers.setInterval(() => this.#tick(), this.#o.intervalMs);
    this.#timer.unref();
    this.#tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timers.clearInterval(this.#timer);
    for (const o of this.#out.values()) o.conn?.close();
    await this.#listener?.close();
  }

  /**
   * Resolves true once this node has joined at least one peer, false after `timeoutMs` without
   * one (it goes on as a one-node cluster and keeps pulsing its seeds). Without seeds: true.
   */
  joined(timeoutMs: number): Promise<boolean> {
    if (this.#o.seeds.length === 0 || this.#snapshot.members.length > 1) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = this.#timers.setTimeout(() => {
        off();
        resolve(false);
      }, timeoutMs);
      const off = this.onChange((s) => {
        if (s.members.length < 2) return;
        off();
        this.#timers.clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Random per process (a restarted node is told apart by it). */
  get incarnation(): string {
    return this.#incarnation;
  }

  /** The process incarnation a live peer last announced (a restart changes it). */
  incarnationOf(nodeId: string): string | undefined {
    return this.#peers.get(nodeId)?.incarnation;
  }

  /** True once stop() was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  snapshot(): MembershipSnapshot {
    return this.#snapshot;
  }

  /** Calls cb after every membership change; returns a function that unsubscribes. */
  onChange(cb: (s: MembershipSnapshot) => void): () => void {
    this.#listeners.push(cb);
    return () => {
      const i = this.#listeners.indexOf(cb);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** Live peers (never this node). */
  peers(): PeerInfo[] {
    const ids = new Set(this.#snapshot.members.map((m) => m.nodeId));
    return [...this.#peers.values()].filter((p) => ids.has(p.nodeId));
  }

  /** True when every live peer announces the cluster key this node computed. */
  integrity(): boolean {
    return this.peers().every((p) => p.clusterKey === this.#snapshot.clusterKey);
  }

  /** Registers a handler for a fabric message kind arriving on incoming connections. */
  handle(kind: number, h: FrameHandler): void {
    assert.ok(!this.#handlers.has(kind), `fabric kind ${kind} already handled`);
    this.#handlers.set(kind, h);
  }

  /** Sends to a live peer over this node's connection to it; returns it, or undefined. */
  connectionTo(nodeId: string): FabricConnection | undefined {
    // A stopped node opens no new connections (late retransmits and replies go nowhere).
    if (this.#stopped) return undefined;
    const p = this.#peers.get(nodeId);
    if (!p) return undefined;
    const o = this.#out.get(p.outKey);
    if (!o) return undefined;
    return this.#ensure(o);
  }

  /** Whether this node announces itself quiesced. */
  get quiesced(): boolean {
    return this.#quiesced;
  }

  /**
   * Quiesces this node (or undoes it): announced in the next pulse, and this node's own member
   * list changes at once (a new cluster key and so a rebalance round). Returns whether it changed.
   */
  setQuiesced(on: boolean): boolean {
    if (this.#quiesced === on) return false;
    this.#quiesced = on;
    this.#o.log?.('info', on ? 'quiesced: moving to the end of every succession' : 'quiesce undone');
    this.#recompute(this.#o.clock.nowMs(), false);
    this.#tick();
    return true;
  }

  #selfMember(): Member {
    return { nodeId: this.#o.nodeId, ...(this.#o.rackId !== undefined ? { rackId: this.#o.rackId } : {}), ...(this.#quiesced ? { quiesced: true as const } : {}) };
  }

  #advertised(): Endpoint {
    return { host: this.#o.advertiseHost ?? this.#o.listen.host, port: this.#heartbeatPort };
  }

  #tick(): void {
    const now = this.#o.clock.nowMs();
    this.#expire(now);
    const pulse = this.#encodePulse();
    for (const [key, o] of this.#out) {
      if (this.#self.has(key)) continue;
      if (!o.seed && now - o.lastUsefulMs > FORGET_TIMEOUTS * this.nodeTimeoutMs) {
        o.conn?.close();
        this.#out.delete(key);
        continue;
      }
      this.#ensure(o).send(pulse);
      this.counters.pulses_sent++;
    }
  }

  #ensure(o: OutLink): FabricConnection {
    if (o.conn && !o.conn.closed) return o.conn;
    if (o.conn?.refused) o.refusedConnects++;
    const conn = this.#o.transport.connect(o.endpoint);
    // Replies (refusals, proxy responses) come back on our own outgoing connection.
    conn.onFrame((f) => this.#dispatch(f, (kind, payload) => conn.send(frame(kind, payload))));
    o.conn = conn;
    return conn;
  }

  #serve(conn: FabricConnection): void {
    conn.onFrame((f) => this.#dispatch(f, (kind, payload) => conn.send(frame(kind, payload))));
  }

  #dispatch(f: Buffer, reply: (kind: number, payload: Buffer) => void): void {
    if (f.length < 1) return;
    const h = this.#handlers.get(f[0]!);
    if (h) h(f.subarray(1), reply);
  }

  #encodePulse(): Buffer {
    // Every live peer, member or not: a node learns all endpoints even while not a member.
    const live = [...this.#peers.values()];
    const adjacency = live.map((p) => ({ nodeId: p.nodeId, heartbeat: p.heartbeat }));
    const members = this.#snapshot.members.map((m) => m.nodeId);
    const pulse: Pulse = {
      v: 1,
      nodeId: this.#o.nodeId,
      incarnation: this.#incarnation,
      clusterName: this.#o.clusterName,
      fabric: this.#fabricVersion,
      heartbeat: this.#advertised(),
      service: this.#o.service(),
      clusterKey: this.#snapshot.clusterKey,
      adjacency,
      hears: live.map((p) => p.nodeId),
      members,
      principal: members[0]!,
      ...(this.#o.rackId !== undefined ? { rackId: this.#o.rackId } : {}),
      ...(this.#quiesced ? { quiesced: true as const } : {}),
    };
    return frame(FabricKind.PULSE, Buffer.from(JSON.stringify(pulse)));
  }

  #onPulse(payload: Buffer, reply: (kind: number, payload: Buffer) => void): void {
    const p = parsePulse(payload);
    if (!p) return;
    this.counters.pulses_received++;
    if (p.nodeId === this.#o.nodeId) {
      if (p.incarnation === this.#incarnation) this.#self.add(epKey(p.heartbeat));
      else this.#logOnce(`dup:${epKey(p.heartbeat)}`, `node ${epKey(p.heartbeat)} uses our node id ${p.nodeId}: ignored (node ids must be unique)`);
      return;
    }
    if (p.clusterName !== this.#o.clusterName) {
      this.counters.refused_cluster_name++;
      const reason = `cluster-name "${p.clusterName}" of node ${p.nodeId} differs from ours ("${this.#o.clusterName}")`;
      this.#logOnce(`name:${p.nodeId}`, `refusing node ${p.nodeId} at ${epKey(p.heartbeat)}: ${reason}`);
      reply(FabricKind.REFUSED, Buffer.from(JSON.stringify({ nodeId: this.#o.nodeId, clusterName: this.#o.clusterName, reason })));
      return;
    }
    const theirs = p.fabric ?? FABRIC_PROTOCOL_VERSION_UNSTATED;
    if (theirs !== this.#fabricVersion) {
      this.counters.refused_fabric_version++;
      const reason = `fabric protocol version ${theirs} of node ${p.nodeId} differs from ours (${this.#fabricVersion}): the two ferry versions cannot replicate or migrate to each other; run one version in a cluster`;
      this.#logOnce(`fabric:${p.nodeId}`, `refusing node ${p.nodeId} at ${epKey(p.heartbeat)}: ${reason}`);
      reply(FabricKind.REFUSED, Buffer.from(JSON.stringify({ nodeId: this.#o.nodeId, clusterName: this.#o.clusterName, reason })));
      return;
    }
    const now = this.#o.clock.nowMs();
    const prev = this.#peers.get(p.nodeId);
    // A peer listening on a wildcard address without an advertise address: the best guess for
    // its service host is the host its heartbeat is reached at.
    const service = isWildcard(p.service.host) && !isWildcard(p.heartbeat.host) ? { host: p.heartbeat.host, port: p.service.port } : p.service;
    const hears = new Set(p.hears ?? p.adjacency.map((a) => a.nodeId));
    const members = p.members ?? [p.nodeId];
    const restarted = prev !== undefined && prev.incarnation !== p.incarnation;
    if (restarted) {
      // A restart faster than the node timeout is still a departure: what the node held in
      // memory and did not sync is gone, and it missed writes while down. It leaves the member
      // list first and rejoins, so the table changes twice and migrations fill it again.
      this.#peers.delete(p.nodeId);
      this.#o.log?.('warn', `node ${p.nodeId} at ${epKey(p.heartbeat)} restarted (new incarnation): it leaves and rejoins`);
      this.#recompute(now, true);
    }
    this.#peers.set(p.nodeId, {
      nodeId: p.nodeId,
      heartbeat: p.heartbeat,
      outKey: epKey(p.heartbeat),
      service,
      clusterKey: p.clusterKey,
      lastSeenMs: now,
      incarnation: p.incarnation,
      hears,
      members,
      principal: p.principal ?? members[0]!,
      ...(p.rackId !== undefined ? { rackId: p.rackId } : {}),
      ...(p.quiesced === true ? { quiesced: true as const } : {}),
    });
    this.#learn(p.heartbeat, now);
    const link = this.#out.get(epKey(p.heartbeat));
    if (link) link.refusedConnects = 0;
    for (const a of p.adjacency) if (a.nodeId !== this.#o.nodeId) this.#learn(a.heartbeat, now);
    const changed = !prev || restarted || prev.rackId !== p.rackId || prev.quiesced !== (p.quiesced === true ? true : undefined) || prev.principal !== p.principal || !sameIds(prev.members, members) || !sameSet(prev.hears, hears);
    if (changed) this.#recompute(now, false);
  }

  #onRefused(payload: Buffer): void {
    let r: { nodeId?: unknown; reason?: unknown };
    try {
      r = JSON.parse(payload.toString()) as typeof r;
    } catch {
      return;
    }
    this.counters.refused_cluster_name++;
    this.#logOnce(`refused:${String(r.nodeId)}`, `node ${String(r.nodeId)} refused us: ${String(r.reason)}`);
  }

  #learn(endpoint: Endpoint, now: number): void {
    const key = epKey(endpoint);
    if (this.#self.has(key)) return;
    const o = this.#out.get(key);
    if (o) o.lastUsefulMs = now;
    else this.#out.set(key, { endpoint, seed: false, lastUsefulMs: now, refusedConnects: 0 });
  }

  #expire(now: number): void {
    let gone = false;
    for (const [id, p] of this.#peers) {
      const silentMs = now - p.lastSeenMs;
      const refused = this.#out.get(epKey(p.heartbeat))?.refusedConnects ?? 0;
      if (silentMs > this.nodeTimeoutMs) {
        this.#peers.delete(id);
        this.#o.log?.('warn', `node ${id} at ${epKey(p.heartbeat)} is gone (no heartbeat for ${silentMs} ms)`);
        gone = true;
      } else if (refused >= REFUSED_CONNECTS_GONE && silentMs > REFUSED_GONE_INTERVALS * this.#o.intervalMs) {
        this.#peers.delete(id);
        this.#o.log?.('warn', `node ${id} at ${epKey(p.heartbeat)} is gone (its heartbeat port refused ${refused} connects; no heartbeat for ${silentMs} ms)`);
        gone = true;
      }
    }
    if (gone) this.#recompute(now, false);
  }

  /** Recomputes the member list by the agreement rule (see the top); notifies listeners if it changed. */
  #recompute(now: number, force: boolean): void {
    const ids = agreeMembers(this.#o.nodeId, this.#peers, this.#snapshot.members.map((m) => m.nodeId));
    const members = validateMembers(ids.map((id) => (id === this.#o.nodeId ? this.#selfMember() : memberOf(this.#peers.get(id)!))));
    const clusterKey = clusterKeyOf(members);
    if (clusterKey === this.#snapshot.clusterKey && !force) return;
    this.#snapshot = { members, clusterKey, generation: this.#snapshot.generation + 1 };
    this.counters.membership_changes++;
    this.#o.log?.('info', `cluster changed: ${members.length} node(s) [${members.map((m) => m.nodeId).join(',')}], key ${clusterKey}`, { now });
    for (const cb of this.#listeners) cb(this.#snapshot);
  }

  #logOnce(key: string, msg: string): void {
    const now = this.#o.clock.nowMs();
    const last = this.#refusalLoggedMs.get(key);
    if (last !== undefined && now - last < REFUSAL_LOG_EVERY_MS) return;
    this.#refusalLoggedMs.set(key, now);
    this.#o.log?.('warn', msg);
  }
}

const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::' || host === '';

const memberOf = (p: PeerState): Member => ({ nodeId: p.nodeId, ...(p.rackId !== undefined ? { rackId: p.rackId } : {}), ...(p.quiesced ? { quiesced: true as const } : {}) });

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

/** What a peer announces, as the agreement reads it. */
export interface AgreementPeer {
  hears: ReadonlySet<string>;
  members: readonly string[];
  principal: string;
}

/**
 * The agreement rule (pure; see the top of this file): the member ids `self` uses, sorted, given
 * its live peers (what each hears, uses and follows) and the members it uses now.
 */
export function agreeMembers(self: string, live: ReadonlyMap<string, AgreementPeer>, current: readonly string[]): string[] {
  const sorted = (xs: Iterable<string>): string[] => [...xs].sort(compareIds);
  const hears = (a: string, b: string): boolean => (a === self ? live.has(b) : (live.get(a)?.hears.has(b) ?? false));
  const mutual = (a: string, b: string): boolean => hears(a, b) && hears(b, a);
  // 1. Follow the lowest live principal that proposes a list with this node, all of it heard.
  for (const id of sorted(live.keys())) {
    if (compareIds(id, self) >= 0) break;
    const p = live.get(id)!;
    if (p.principal !== id || !p.members.includes(self)) continue;
    if (p.members.every((m) => m === self || live.has(m))) return sorted(p.members);
  }
  // A live peer that does not list this node yet (it just started, or we did) will within a
  // pulse: until it does, no clique is final, so wait rather than shrink (a restarted node
  // would otherwise drop to a one-node cluster between two pulses).
  let handshaking = [...live.values()].some((p) => !p.hears.has(self) && !(p.members.length > 1 && !p.members.includes(self)));
  // 2. A clique: this node first, then its current members, then the other peers in id order,
  // skipping those a lower principal holds without us. Current members come first so that a
  // newcomer some members do not hear yet is not taken in their place (the cluster would shrink
  // to the part that hears it, for a few pulses, and both parts would take writes).
  const taken = [self];
  const order = sorted(live.keys());
  for (const id of [...order.filter((x) => current.includes(x)), ...order.filter((x) => !current.includes(x))]) {
    if (taken.includes(id)) continue;
    const p = live.get(id)!;
    const inOther = p.members.length > 1 && !p.members.includes(self);
    if (inOther && compareIds(p.principal, self) < 0) continue;
    // A peer in a cluster comes with all of that cluster or not at all (its list may name this
    // node too): taking part of a cluster splits it. A peer not among our current members waits
    // until its cluster's members and this node all hear each other (a pulse or two after a start).
    const group = p.members.length > 1 ? p.members.filter((m) => m !== self && !taken.includes(m)) : [id];
    if (!group.includes(id)) group.push(id);
    const joins = group.every((m) => live.has(m) && taken.every((x) => mutual(x, m)) && group.every((o) => o === m || mutual(o, m)));
    if (joins) taken.push(...group);
    else if (current.includes(id)) {
      // A member of ours whose list names others we cannot take (a partial partition): it stays, alone.
      if (taken.every((x) => mutual(x, id))) taken.push(id);
    } else if (group.length > 1) handshaking = true;
  }
  const clique = sorted(taken);
  if (clique[0] === self && !handshaking) return clique;
  // 3. Not our clique's principal: wait for its proposal, keeping the current members still live.
  return sorted(current.filter((id) => id === self || live.has(id)).concat(current.includes(self) ? [] : [self]));
}

export function frame(kind: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.of(kind), payload]);
}

function isEndpoint(e: unknown): e is Endpoint {
  const x = e as Endpoint;
  return typeof x === 'object' && x !== null && typeof x.host === 'string' && Number.isInteger(x.port) && x.port > 0 && x.port < 65536;
}

/** Decodes and checks a pulse; a malformed one is ignored (undefined). */
function parsePulse(payload: Buffer): Pulse | undefined {
  let p: Pulse;
  try {
    p = JSON.parse(payload.toString()) as Pulse;
  } catch {
    return undefined;
  }
  if (typeof p !== 'object' || p === null || p.v !== 1) return undefined;
  if (typeof p.nodeId !== 'string' || !/^[0-9A-F]{1,16}$/.test(p.nodeId)) return undefined;
  if (typeof p.clusterName !== 'string' || typeof p.incarnation !== 'string' || typeof p.clusterKey !== 'string') return undefined;
  if (p.fabric !== undefined && !(Number.isInteger(p.fabric) && p.fabric > 0)) return undefined;
  if (!isEndpoint(p.heartbeat) || !isEndpoint(p.service)) return undefined;
  if (p.rackId !== undefined && (!Number.isInteger(p.rackId) || p.rackId < 0 || p.rackId > 1_000_000)) return undefined;
  if (p.quiesced !== undefined && typeof p.quiesced !== 'boolean') return undefined;
  if (!Array.isArray(p.adjacency) || p.adjacency.length > ADJACENCY_MAX) return undefined;
  if (!p.adjacency.every((a) => typeof a?.nodeId === 'string' && isEndpoint(a.heartbeat))) return undefined;
  const ids = (x: unknown): boolean => Array.isArray(x) && x.length <= ADJACENCY_MAX && x.every((id) => typeof id === 'string' && /^[0-9A-F]{1,16}$/.test(id));
  if (p.hears !== undefined && !ids(p.hears)) return undefined;
  if (p.members !== undefined && (!ids(p.members) || p.members.length === 0 || !p.members.includes(p.nodeId))) return undefined;
  if (p.principal !== undefined && (typeof p.principal !== 'string' || !(p.members ?? [p.nodeId]).includes(p.principal))) return undefined;
  return p;
}
