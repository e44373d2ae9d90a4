/**
 * The peers a node last ran with, remembered across restarts so a node always rejoins its
 * cluster. Without it the first node of a cluster (started with no seeds, the others seeded
 * from it) came back from a restart as a one-node cluster of its own: alone and seedless it
 * calls its copies FULL (balance.ts, promoteAlone) and served them as master while the others
 * went on taking writes, so reads there missed acknowledged writes until the two merged. With
 * the remembered heartbeat addresses as seeds it is a seeded node like the others: alone, it
 * serves only copies it holds FULL (none, after a restart) until it has rejoined.
 *
 * File `cluster-peers.json` in the node's data directory: the cluster name and the heartbeat
 * addresses of the peers of the last membership with more than one node (a node left alone
 * keeps the list: being alone may be a network partition). Written whole to a temporary file
 * and renamed, only when the list changes (membership changes are rare). A node moved to
 * another cluster name ignores the file; `heartbeat.remember-peers = false` turns it off (a
 * node that is to run alone for good with its data).
 *
 * Bad input: an unreadable or malformed file is reported by load() as an error (the caller
 * logs it and starts with the configured seeds only); it never stops the node.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Endpoint } from './transport.js';

const FILE_NAME = 'cluster-peers.json';
/** At most this many remembered peers (the cluster size limit is lower). */
const PEERS_MAX = 256;

export interface KnownPeersFile {
  v: 1;
  clusterName: string;
  peers: Array<{ nodeId: string; heartbeat: Endpoint }>;
}

export class KnownPeersError extends Error {
  readonly code = 'KNOWN_PEERS' as const;
  readonly retriable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KnownPeersError';
  }
}

const epKey = (e: Endpoint): string => `${e.host}:${e.port}`;

export class KnownPeers {
  #lastWritten = '';

  constructor(
    readonly dir: string,
    readonly clusterName: string,
  ) {}

  get path(): string {
    return join(this.dir, FILE_NAME);
  }

  /** The remembered peers' heartbeat addresses ([] when none, or the file is another cluster's). */
  load(): Endpoint[] {
    if (!existsSync(this.path)) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (err) {
      throw new KnownPeersError(`cannot read ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    const f = parsed as Partial<KnownPeersFile>;
    if (f?.v !== 1 || typeof f.clusterName !== 'string' || !Array.isArray(f.peers) || f.peers.length > PEERS_MAX) {
      throw new KnownPeersError(`${this.path} is not a peers file of this version (v 1, clusterName, at most ${PEERS_MAX} peers)`);
    }
    if (f.clusterName !== this.clusterName) return [];
    const out: Endpoint[] = [];
    for (const [i, p] of f.peers.entries()) {
      const e = p?.heartbeat;
      if (typeof e?.host !== 'string' || e.host === '' || !Number.isInteger(e.port) || e.port < 1 || e.port > 65535) {
        throw new KnownPeersError(`${this.path}: peers[${i}].heartbeat is not a host and port`);
      }
      out.push({ host: e.host, port: e.port });
    }
    this.#lastWritten = JSON.stringify(f.peers);
    return out;
  }

  /** Remembers the peers of a membership with more than one node; true if the file changed. */
  save(peers: ReadonlyArray<{ nodeId: string; heartbeat: Endpoint }>): boolean {
    if (peers.length === 0) return false;
    const list = [...peers]
      .slice(0, PEERS_MAX)
      .map((p) => ({ nodeId: p.nodeId, heartbeat: { host: p.heartbeat.host, port: p.heartbeat.port } }))
      .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
    const text = JSON.stringify(list);
    if (text === this.#lastWritten) return false;
    const file: KnownPeersFile = { v: 1, clusterName: this.clusterName, peers: list };
    // Synced before the rename: after a power loss the file is the old list or the new one, never
    // empty (an empty one would bring the first node back seedless, the case this file is for).
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, `${JSON.stringify(file, null, 1)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    this.#lastWritten = text;
    return true;
  }
}

/** Configured seeds first, then remembered addresses not among them and not this node's own. */
export function mergeSeeds(configured: readonly Endpoint[], remembered: readonly Endpoint[], self: readonly Endpoint[]): Endpoint[] {
  const seen = new Set([...configured, ...self].map(epKey));
  const out = [...configured];
  for (const e of remembered) {
    if (seen.has(epKey(e))) continue;
    seen.add(epKey(e));
    out.push(e);
  }
  return out;
}
