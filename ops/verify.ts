/**
 * `ferry verify` as a function: proves two sites hold the same namespace, or lists the keys in
 * which they differ.
 *
 * 1. Both sites' partition checksums (info `ferry-checksums`, from each partition's master).
 * 2. For partitions whose (count, hash) differ: both sides' digest listings (`ferry-digests`),
 *    diffed into candidate keys.
 * 3. Writes may be in flight: after `recheckMs` the partitions holding candidates are listed
 *    again, and only keys that still differ are reported (with their latest state).
 *
 * A tombstone on one site where the other has no entry at all is no difference by default: both
 * say "no record", and each site reclaims old tombstones on its own schedule (tomb raider).
 * `strictTombstones` counts them as differences.
 *
 * Memory is bounded: at most `candidateKeysMax` candidate digests are remembered; a partition
 * past that limit reports every key that differs in the re-check.
 */
import {
  PARTITION_COUNT,
  parseChecksums,
  parseListing,
  FerryClient,
  parsePartitionBitmap,
  AerospikeError,
  type DigestEntry,
  type PartitionChecksum,
} from '../store/index.js';

export const VERIFY_RECHECK_MS_DEFAULT = 2000;
export const VERIFY_MAX_LIST_DEFAULT = 100;
/** Partitions per `ferry-checksums` request. */
export const CHECKSUM_PARTITIONS_PER_REQUEST = 512;
/** Listing requests in flight per site. */
export const LISTING_CONCURRENCY = 8;
/** Candidate digests remembered between the first pass and the re-check. */
export const CANDIDATE_KEYS_MAX = 1_000_000;
/** Per-request timeout: a checksum request walks a slice of the whole index. */
export const VERIFY_REQUEST_TIMEOUT_MS = 30_000;

export interface Endpoint {
  host: string;
  port: number;
}

export type VerifyErrorCode = 'USAGE' | 'CONNECTION' | 'NAMESPACE_NOT_FOUND' | 'UNAVAILABLE' | 'PROTOCOL' | 'ABORTED';

export class VerifyError extends Error {
  constructor(
    readonly code: VerifyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'VerifyError';
  }
}

export interface VerifyOptions {
  a: Endpoint;
  b: Endpoint;
  namespace: string;
  /** Wait before re-checking differences; 0 = report the first pass as is. */
  recheckMs?: number;
  /** Keys listed in the report (all are counted). */
  maxList?: number;
  timeoutMs?: number;
  candidateKeysMax?: number;
  /** Count "tombstone on one side, nothing on the other" as a difference. */
  strictTombstones?: boolean;
  signal?: AbortSignal;
  /** Called as the comparison advances (for a progress line). */
  onProgress?: (phase: 'checksums' | 'listings' | 'recheck', done: number, total: number) => void;
}

export interface KeyState {
  generation: number;
  lutMs: number;
  tombstone: boolean;
}

export interface KeyDiff {
  partition: number;
  digest: string;
  /** undefined: the site has no entry (not even a tombstone) for the digest. */
  a?: KeyState;
  b?: KeyState;
}

export interface VerifyReport {
  namespace: string;
  a: string;
  b: string;
  equal: boolean;
  partitionsCompared: number;
  /** Partitions whose checksums differed in the first pass. */
  partitionsDifferingFirstPass: number;
  /** Partitions holding at least one persistent difference. */
  partitionsDiffering: number;
  /** Index entries (records and tombstones; the ferry-xdr system set left out) per site. */
  recordsA: number;
  recordsB: number;
  /** Of which tombstones. */
  tombstonesA: number;
  tombstonesB: number;
  /** Keys with a tombstone on one side and no entry on the other (first pass; differences only with strictTombstones). */
  tombstoneOnlyKeys: number;
  /** Keys that differed in the first pass. */
  candidateKeys: number;
  /** Keys that differed in the first pass and no longer did at the re-check. */
  settledKeys: number;
  /** Persistent differences (all counted). */
  differingKeys: number;
  /** Up to maxList of them, by partition then digest. */
  keys: KeyDiff[];
  truncated: boolean;
  recheckMs: number;
  durationMs: number;
}

/** Parses `host:port` or `[v6]:port`. */
export function parseEndpoint(text: string): Endpoint {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\s]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new VerifyError('USAGE', `expected host:port, got "${text}"`);
  }
  return { host: m[1]!, port };
}

function endpointText(e: Endpoint): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

function stateOf(e: DigestEntry): KeyState {
  return { generation: e.generation, lutMs: e.lutMs, tombstone: e.tombstone };
}

function sameState(x: DigestEntry, y: DigestEntry): boolean {
  return x.generation === y.generation && x.lutMs === y.lutMs && x.tombstone === y.tombstone;
}

/** Keys whose entries differ between two digest-sorted listings of one partition. */
export function diffListings(partition: number, a: readonly DigestEntry[], b: readonly DigestEntry[]): KeyDiff[] {
  const out: KeyDiff[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x && (!y || x.digest < y.digest)) {
      out.push({ partition, digest: x.digest, a: stateOf(x) });
      i++;
    } else if (y && (!x || y.digest < x.digest)) {
      out.push({ partition, digest: y.digest, b: stateOf(y) });
      j++;
    } else {
      if (!sameState(x!, y!)) out.push({ partition, digest: x!.digest, a: stateOf(x!), b: stateOf(y!) });
      i++;
      j++;
    }
  }
  return out;
}

/** A tombstone on one side, no entry on the other. */
export function isTombstoneOnly(d: KeyDiff): boolean {
  return (d.a === undefined && d.b?.tombstone === true) || (d.b === undefined && d.a?.tombstone === true);
}

/** Partitions whose (count, hash) differ; absent = empty. */
export function differingPartitions(a: Map<number, PartitionChecksum>, b: Map<number, PartitionChecksum>): number[] {
  const out: number[] = [];
  for (let p = 0; p < PARTITION_COUNT; p++) {
    const x = a.get(p);
    const y = b.get(p);
    if ((x?.count ?? 0) !== (y?.count ?? 0) || (x?.hash ?? '') !== (y?.hash ?? '')) out.push(p);
  }
  return out;
}

/** One site: a client plus who masters each partition of the namespace. */
class Site {
  private constructor(
    readonly label: string,
    private readonly client: FerryClient,
    private readonly namespace: string,
    /** pid -> master node id. */
    private readonly masters: string[],
  ) {}

  static async open(label: string, ep: Endpoint, namespace: string, timeoutMs: number): Promise<Site> {
    let client: FerryClient;
    try {
      client = await FerryClient.connect({ hosts: [ep], tendIntervalMs: 0, timeoutMs, connectTimeoutMs: Math.min(timeoutMs, 5000) });
    } catch (err) {
      throw new VerifyError('CONNECTION', `site ${label} (${endpointText(ep)}): ${(err as Error).message}`);
    }
    try {
      const masters = new Array<string>(PARTITION_COUNT).fill('');
      let hasNamespace = false;
      for (const nodeId of client.nodeIds()) {
        const value = await client.infoValue('replicas-master', nodeId);
        for (const item of value.split(';')) {
          const colon = item.indexOf(':');
          if (colon < 0 || item.slice(0, colon) !== namespace) continue;
          hasNamespace = true;
          const owns = parsePartitionBitmap(item.slice(colon + 1));
          for (let p = 0; p < PARTITION_COUNT; p++) if (owns(p)) masters[p] = nodeId;
        }
      }
      if (!hasNamespace) throw new VerifyError('NAMESPACE_NOT_FOUND', `site ${label} (${endpointText(ep)}) has no namespace ${namespace}`);
      const missing = masters.filter((m) => m === '').length;
      if (missing > 0) throw new VerifyError('UNAVAILABLE', `site ${label}: ${missing} partitions have no master`);
      return new Site(label, client, namespace, masters);
    } catch (err) {
      client.close();
      throw wrap(label, err);
    }
  }

  close(): void {
    this.client.close();
  }

  /** Checksums of every partition, each from its master. */
  async checksums(signal: AbortSignal | undefined, progress: (n: number) => void): Promise<Map<number, PartitionChecksum>> {
    const out = new Map<number, PartitionChecksum>();
    const nodes = [...new Set(this.masters)];
    for (const nodeId of nodes) {
      for (let from = 0; from < PARTITION_COUNT; from += CHECKSUM_PARTITIONS_PER_REQUEST) {
        const to = Math.min(PARTITION_COUNT, from + CHECKSUM_PARTITIONS_PER_REQUEST) - 1;
        if (!this.masters.slice(from, to + 1).includes(nodeId)) continue;
        checkAborted(signal);
        const value = await this.info(`ferry-checksums:namespace=${this.namespace};from=${from};to=${to}`, nodeId);
        for (const [pid, c] of parseChecksums(value)) if (this.masters[pid] === nodeId) out.set(pid, c);
        progress(to - from + 1);
      }
    }
    return out;
  }

  async listing(pid: number): Promise<DigestEntry[]> {
    return parseListing(await this.info(`ferry-digests:namespace=${this.namespace};partition=${pid}`, this.masters[pid]!));
  }

  private async info(command: string, nodeId: string): Promise<string> {
    try {
      return await this.client.infoValue(command, nodeId);
    } catch (err) {
      throw wrap(this.label, err);
    }
  }
}

function wrap(label: string, err: unknown): Error {
  if (err instanceof VerifyError) return err;
  if (err instanceof AerospikeError) {
    if (err.code === 20) return new VerifyError('NAMESPACE_NOT_FOUND', `site ${label}: ${err.message}`);
    if (err.code < 0 || err.code === 9) return new VerifyError('CONNECTION', `site ${label}: ${err.message}`);
    return new VerifyError('PROTOCOL', `site ${label}: error ${err.code}: ${err.message}`);
  }
  if (err instanceof Error && err.name === 'ChecksumFormatError') return new VerifyError('PROTOCOL', `site ${label}: ${err.message}`);
  return err instanceof Error ? err : new Error(String(err));
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new VerifyError('ABORTED', 'verify interrupted');
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    checkAborted(signal);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new VerifyError('ABORTED', 'verify interrupted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Runs `fn` over `items` with at most `limit` in flight; results in item order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Compares the namespace on two sites; see the module comment. */
export async function verifySites(opts: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const recheckMs = opts.recheckMs ?? VERIFY_RECHECK_MS_DEFAULT;
  const maxList = opts.maxList ?? VERIFY_MAX_LIST_DEFAULT;
  const candidateKeysMax = opts.candidateKeysMax ?? CANDIDATE_KEYS_MAX;
  const timeoutMs = opts.timeoutMs ?? VERIFY_REQUEST_TIMEOUT_MS;
  const { signal } = opts;
  if (!Number.isInteger(recheckMs) || recheckMs < 0) throw new VerifyError('USAGE', `recheck-ms must be an integer >= 0, got ${recheckMs}`);
  if (!Number.isInteger(maxList) || maxList < 0) throw new VerifyError('USAGE', `max-list must be an integer >= 0, got ${maxList}`);
  if (!opts.namespace) throw new VerifyError('USAGE', 'namespace required');

  const sites = await Promise.allSettled([
    Site.open('A', opts.a, opts.namespace, timeoutMs),
    Site.open('B', opts.b, opts.namespace, timeoutMs),
  ]);
  const opened = sites.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    const failed = sites.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const [siteA, siteB] = opened as [Site, Site];

    // 1. checksums
    let done = 0;
    const progress = (n: number): void => {
      done += n;
      opts.onProgress?.('checksums', done, 2 * PARTITION_COUNT);
    };
    const [ca, cb] = await Promise.all([siteA.checksums(signal, progress), siteB.checksums(signal, progress)]);
    const sum = (m: Map<number, PartitionChecksum>, f: 'count' | 'tombstones'): number => [...m.values()].reduce((s, c) => s + c[f], 0);
    let tombstoneOnlyKeys = 0;
    let firstPass = true;
    const differing = differingPartitions(ca, cb);

    // 2. listings of differing partitions -> candidates
    const listBoth = async (pids: readonly number[], phase: 'listings' | 'recheck'): Promise<Map<number, KeyDiff[]>> => {
      const out = new Map<number, KeyDiff[]>();
      let n = 0;
      await mapLimited(pids, LISTING_CONCURRENCY, async (pid) => {
        checkAborted(signal);
        const [la, lb] = await Promise.all([siteA.listing(pid), siteB.listing(pid)]);
        const d = diffListings(pid, la, lb).filter((x) => {
          if (opts.strictTombstones || !isTombstoneOnly(x)) return true;
          if (firstPass) tombstoneOnlyKeys++;
          return false;
        });
        if (d.length > 0) out.set(pid, d);
        opts.onProgress?.(phase, ++n, pids.length);
      });
      return out;
    };
    const first = await listBoth(differing, 'listings');
    firstPass = false;
    /** pid -> candidate digests; undefined value = too many to remember (every re-check difference counts). */
    const candidates = new Map<number, Set<string> | undefined>();
    let candidateKeys = 0;
    let remembered = 0;
    for (const [pid, diffs] of first) {
      candidateKeys += diffs.length;
      if (remembered + diffs.length <= candidateKeysMax) {
        candidates.set(pid, new Set(diffs.map((d) => d.digest)));
        remembered += diffs.length;
      } else {
        candidates.set(pid, undefined);
      }
    }

    // 3. re-check
    let persistent: KeyDiff[];
    if (candidateKeys > 0 && recheckMs > 0) {
      await sleep(recheckMs, signal);
      const pids = [...candidates.keys()].sort((x, y) => x - y);
      const second = await listBoth(pids, 'recheck');
      persistent = [];
      for (const pid of pids) {
        const keep = candidates.get(pid);
        for (const d of second.get(pid) ?? []) if (!keep || keep.has(d.digest)) persistent.push(d);
      }
    } else {
      persistent = [...first.keys()].sort((x, y) => x - y).flatMap((pid) => first.get(pid)!);
    }

    const keys = persistent.slice(0, maxList);
    return {
      namespace: opts.namespace,
      a: endpointText(opts.a),
      b: endpointText(opts.b),
      equal: persistent.length === 0,
      partitionsCompared: PARTITION_COUNT,
      partitionsDifferingFirstPass: differing.length,
      partitionsDiffering: new Set(persistent.map((d) => d.partition)).size,
      recordsA: sum(ca, 'count'),
      recordsB: sum(cb, 'count'),
      tombstonesA: sum(ca, 'tombstones'),
      tombstonesB: sum(cb, 'tombstones'),
      tombstoneOnlyKeys,
      candidateKeys,
      settledKeys: Math.max(0, candidateKeys - persistent.length),
      differingKeys: persistent.length,
      keys,
      truncated: persistent.length > keys.length,
      recheckMs,
      durationMs: Date.now() - started,
    };
  } finally {
    for (const s of opened) s.close();
  }
}

function stateText(s: KeyState | undefined): string {
  if (!s) return 'absent';
  return `gen=${s.generation} lut=${new Date(s.lutMs).toISOString()}${s.tombstone ? ' tombstone' : ''}`;
}

/** The human-readable report `ferry verify` prints. */
export function formatReport(r: VerifyReport): string {
  const lines = [
    `namespace ${r.namespace}: A ${r.a}, B ${r.b}`,
    `partitions compared: ${r.partitionsCompared} (checksums differed in ${r.partitionsDifferingFirstPass})`,
    `records (incl. tombstones): A ${r.recordsA} (${r.tombstonesA} tombstones), B ${r.recordsB} (${r.tombstonesB} tombstones)`,
  ];
  if (r.tombstoneOnlyKeys > 0) lines.push(`tombstones present on one site only (not differences): ${r.tombstoneOnlyKeys}`);
  if (r.candidateKeys > 0) {
    lines.push(
      r.recheckMs > 0
        ? `keys differing: ${r.candidateKeys} at first, ${r.differingKeys} still after ${r.recheckMs} ms (${r.settledKeys} settled)`
        : `keys differing: ${r.differingKeys} (no re-check)`,
    );
  }
  for (const k of r.keys) lines.push(`  partition ${k.partition} digest ${k.digest}: A ${stateText(k.a)} | B ${stateText(k.b)}`);
  if (r.truncated) lines.push(`  ... ${r.differingKeys - r.keys.length} more (raise --max-list)`);
  lines.push(r.equal ? 'result: EQUAL (the sites are equal)' : `result: DIFFERENT (${r.differingKeys} ${r.differingKeys === 1 ? 'key' : 'keys'} in ${r.partitionsDiffering} ${r.partitionsDiffering === 1 ? 'partition' : 'partitions'})`);
  return lines.join('\n');
}
