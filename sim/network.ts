/**
 * A simulated network implementing store/transport's Transport: endpoints are "host:port" names
 * in one process, frames are delivered as scheduled events after a random delay, and the
 * network can drop, duplicate and reorder frames and cut hosts apart (partitions). With
 * `reorderPct` 0 a connection is FIFO (each frame leaves no earlier than the previous one), as TCP.
 *
 * A frame dropped on a connection is a frame lost, not a broken connection: protocols above
 * must time out and retry, exactly as they must over a real lossy link. A partition between two
 * hosts closes their connections after `partitionCloseMs` and refuses new ones (connect fails:
 * onClose fires), as a TCP keepalive or connect timeout would.
 *
 * Faults are network-wide (`faults`) or per link (`setLinkFaults(a, b, ...)`, both directions),
 * and cuts are per pair of hosts, so a partition can be partial: A and B talk, B and C talk, A
 * and C do not (`cut('A', 'C')`), the case a membership agreement must settle.
 */
import assert from 'node:assert/strict';
import type { Random } from '../store/runtime/index.js';
import type { Endpoint, FabricConnection, FabricListener, Transport } from '../store/transport/index.js';
import type { Scheduler } from './scheduler.js';

export interface NetworkFaults {
  delayMsMin: number;
  delayMsMax: number;
  lossPct: number;
  duplicatePct: number;
  /** Chance a frame ignores FIFO order (gets its own random delay). */
  reorderPct: number;
}

export const NETWORK_FAULTS_NONE: NetworkFaults = { delayMsMin: 1, delayMsMax: 3, lossPct: 0, duplicatePct: 0, reorderPct: 0 };
/** How long a partitioned connection lingers before it is closed, ms. */
const PARTITION_CLOSE_MS = 500;
/** Frames a connecting connection queues before dropping more (TCP's send buffer). */
const PENDING_FRAMES_MAX = 4096;

const keyOf = (e: Endpoint): string => `${e.host}:${e.port}`;

class SimConnection implements FabricConnection {
  peer: SimConnection | undefined;
  #frameCbs: Array<(f: Buffer) => void> = [];
  #closeCbs: Array<() => void> = [];
  #closed = false;
  /** Earliest time the next FIFO frame may arrive. */
  #fifoAtMs = 0;
  constructor(
    private readonly net: SimNetwork,
    readonly localHost: string,
    readonly remoteHost: string,
    readonly remote: string,
    private readonly owner: string,
  ) {}

  get closed(): boolean {
    return this.#closed;
  }

  /** The connect found nothing listening (a crashed process), as TCP's ECONNREFUSED; a cut never refuses. */
  refused = false;

  /** Frames sent while connecting, sent once the connection is up. */
  pending: Buffer[] = [];

  send(frame: Buffer): void {
    if (this.#closed) return;
    const peer = this.peer;
    if (!peer) {
      if (this.pending.length < PENDING_FRAMES_MAX) this.pending.push(Buffer.from(frame));
      return;
    }
    const copies = this.net.copiesOf(this.localHost, this.remoteHost);
    for (let i = 0; i < copies; i++) {
      const delay = this.net.delayMs(this.localHost, this.remoteHost);
      const now = this.net.sched.nowMs;
      let atMs = now + delay;
      if (!this.net.reorders(this.localHost, this.remoteHost)) {
        atMs = Math.max(atMs, this.#fifoAtMs);
        this.#fifoAtMs = atMs;
      }
      const bytes = Buffer.from(frame);
      this.net.sched.at(this.owner, atMs - now, () => peer.deliver(bytes));
    }
  }

  deliver(frame: Buffer): void {
    if (this.#closed) return;
    for (const cb of this.#frameCbs) cb(frame);
  }

  onFrame(cb: (f: Buffer) => void): void {
    this.#frameCbs.push(cb);
  }

  onClose(cb: () => void): void {
    if (this.#closed) cb();
    else this.#closeCbs.push(cb);
  }

  close(): void {
    if (this.#closed) return;
    this.end();
    const peer = this.peer;
    if (peer) this.net.sched.at(this.owner, this.net.delayMs(), () => peer.end());
  }

  end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.net.forget(this);
    for (const cb of this.#closeCbs.splice(0)) cb();
  }
}

export class SimNetwork {
  readonly #listeners = new Map<string, (c: FabricConnection) => void>();
  readonly #open = new Set<SimConnection>();
  /** Host pairs that cannot talk ("a|b", both orders). */
  readonly #cut = new Set<string>();
  faults: NetworkFaults = { ...NETWORK_FAULTS_NONE };
  /** Per-link overrides ("a|b", both orders), on top of `faults`. */
  readonly #linkFaults = new Map<string, Partial<NetworkFaults>>();
  readonly stats = { sent: 0, dropped: 0, duplicated: 0 };

  constructor(
    readonly sched: Scheduler,
    private readonly random: Random,
  ) {}

  /** The Transport as seen from one host, its events on `owner`'s timers. */
  transportFor(host: string, owner: string): Transport {
    return {
      listen: (endpoint, onConnection) => {
        const key = keyOf(endpoint);
        assert(!this.#listeners.has(key), `${key} is already listening`);
        this.#listeners.set(key, onConnection);
        const listener: FabricListener = {
          port: endpoint.port,
          close: () => {
            this.#listeners.delete(key);
            return Promise.resolve();
          },
        };
        return Promise.resolve(listener);
      },
      connect: (endpoint) => this.#connect(host, endpoint, owner),
    };
  }

  #connect(host: string, endpoint: Endpoint, owner: string): FabricConnection {
    const local = new SimConnection(this, host, endpoint.host, keyOf(endpoint), owner);
    this.#open.add(local);
    this.sched.at(owner, this.delayMs(), () => {
      const accept = this.#listeners.get(keyOf(endpoint));
      if (!accept || this.isCut(host, endpoint.host) || local.closed) {
        if (!accept && !this.isCut(host, endpoint.host)) local.refused = true;
        local.end();
        return;
      }
      const remote = new SimConnection(this, endpoint.host, host, `${host}:sim`, owner);
      this.#open.add(remote);
      local.peer = remote;
      remote.peer = local;
      accept(remote);
      for (const f of local.pending.splice(0)) local.send(f);
    });
    return local;
  }

  forget(c: SimConnection): void {
    this.#open.delete(c);
  }

  /** The faults of the link between two hosts (the network's, with that link's overrides). */
  faultsOf(a?: string, b?: string): NetworkFaults {
    const o = a !== undefined && b !== undefined ? this.#linkFaults.get(`${a}|${b}`) : undefined;
    return o ? { ...this.faults, ...o } : this.faults;
  }

  /** Sets (or with undefined clears) the faults of one link, both directions. */
  setLinkFaults(a: string, b: string, f: Partial<NetworkFaults> | undefined): void {
    for (const k of [`${a}|${b}`, `${b}|${a}`]) {
      if (f) this.#linkFaults.set(k, f);
      else this.#linkFaults.delete(k);
    }
  }

  clearLinkFaults(): void {
    this.#linkFaults.clear();
  }

  delayMs(a?: string, b?: string): number {
    const f = this.faultsOf(a, b);
    return f.delayMsMin + this.random.int(Math.max(1, f.delayMsMax - f.delayMsMin + 1));
  }

  reorders(a?: string, b?: string): boolean {
    return this.random.int(100) < this.faultsOf(a, b).reorderPct;
  }

  /** How many copies of a frame arrive: 0 (lost or cut), 1, or 2 (duplicated). */
  copiesOf(from: string, to: string): number {
    this.stats.sent++;
    const f = this.faultsOf(from, to);
    if (this.isCut(from, to) || this.random.int(100) < f.lossPct) {
      this.stats.dropped++;
      return 0;
    }
    if (this.random.int(100) < f.duplicatePct) {
      this.stats.duplicated++;
      return 2;
    }
    return 1;
  }

  isCut(a: string, b: string): boolean {
    return this.#cut.has(`${a}|${b}`);
  }

  /** Cuts every host of `side` from every other host it names; their connections close soon. */
  partition(side: string[], others: string[]): void {
    this.cut(...side.flatMap((a) => others.map((b): [string, string] => [a, b])));
  }

  /** Cuts pairs of hosts (both directions); their connections close soon. */
  cut(...pairs: Array<[string, string]>): void {
    for (const [a, b] of pairs) {
      assert(a !== b, 'a host cannot be cut from itself');
      this.#cut.add(`${a}|${b}`);
      this.#cut.add(`${b}|${a}`);
    }
    this.sched.at('network', PARTITION_CLOSE_MS, () => {
      for (const c of [...this.#open]) if (this.isCut(c.localHost, c.remoteHost)) c.end();
    });
  }

  /** A host's process died: its listeners go, and its connections end on both sides. */
  crashHost(host: string): void {
    for (const key of [...this.#listeners.keys()]) if (key.startsWith(`${host}:`)) this.#listeners.delete(key);
    for (const c of [...this.#open]) {
      if (c.localHost === host) c.end();
      else if (c.remoteHost === host) this.sched.at('network', PARTITION_CLOSE_MS, () => c.end());
    }
  }

  heal(): void {
    this.#cut.clear();
  }
}
