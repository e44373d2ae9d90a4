/**
 * The in-process API of a store node, as the wire protocol server, the shipper and the receiver
 * see it. One StoreNode holds several namespaces; each namespace executes single-record
 * commands, applies replicated writes, scans partitions and exposes its write logs.
 */
import type {
  Bin,
  ConflictPolicyId,
  PartitionId,
  RecordCommand,
  RecordResult,
  RecordVersion,
  ResultCodeId,
  WriteLogEntry,
} from './types.js';

/** Options of a partition scan. */
export interface ScanOptions {
  /** Set to scan; '' or undefined = all sets. */
  set?: string;
  /** Bin names to return; undefined = all bins. */
  bins?: string[];
  /** Return metadata only. */
  headerOnly?: boolean;
  /** Include tombstones (XDR recovery and verify need them; client scans do not). */
  includeTombstones?: boolean;
  /** Include records whose void time has passed but that are not removed yet (XDR recovery ships them too). */
  includeExpired?: boolean;
  /** Only records with LUT strictly greater than this (ms); XDR recovery uses it. */
  lutAfterMs?: number;
}

/** Outcome of applying a replicated (XDR) write. */
export interface ApplyResult {
  resultCode: ResultCodeId;
  /** True when the incoming version won and was stored. */
  applied: boolean;
}

/** A reader of one partition's write log. */
export interface WriteLogReader {
  /** Lowest retained sequence (entries before it were trimmed), or next sequence if empty. */
  firstSequence(pid: PartitionId): bigint;
  /** Sequence the next appended entry will get. */
  nextSequence(pid: PartitionId): bigint;
  /** Up to `max` entries starting at `from` (>= firstSequence). */
  read(pid: PartitionId, from: bigint, max: number): WriteLogEntry[];
  /** Resolves when an entry with sequence >= `from` exists in any of `pids`, or after `timeoutMs`. */
  waitForEntries(pids: PartitionId[] | 'all', fromByPid: (pid: PartitionId) => bigint, timeoutMs: number): Promise<void>;
  /**
   * The same for a tail over many partitions without a BigInt per partition and check: resolves
   * when some partition p with `mask[p]` set has an entry with sequence >= `from[p]`, or after
   * `timeoutMs`.
   */
  waitForEntriesFrom(mask: ArrayLike<number>, from: ArrayLike<number>, timeoutMs: number): Promise<void>;
  /**
   * Calls `cb` with the partition of every entry appended from now on (synchronously, inside the
   * append: keep it tiny); returns the unsubscribe.
   */
  onAppend(cb: (pid: PartitionId) => void): () => void;
  /** firstSequence and nextSequence as numbers (sequences stay below 2^53). */
  firstSequenceNumber(pid: PartitionId): number;
  nextSequenceNumber(pid: PartitionId): number;
}

export interface StoreNamespace {
  readonly name: string;

  /** get / exists / put / operate / touch / remove: everything one AS_MSG can ask of one record. */
  execute(cmd: RecordCommand): Promise<RecordResult>;

  /**
   * Applies a version shipped from another site under the record lock, only if it wins against
   * the local one by `policy` (ties broken deterministically). Keeps the source's generation and
   * LUT. Allowed on a fenced (passive) namespace.
   */
  applyReplicated(version: RecordVersion, policy: ConflictPolicyId): Promise<ApplyResult>;

  /** The record's current version, tombstones included; undefined when unknown. */
  readVersion(digest: Buffer): RecordVersion | undefined;

  /** Iterates one partition's live records (and tombstones if asked). */
  scanPartition(pid: PartitionId, opts: ScanOptions): Iterable<RecordVersion>;

  /** The per-partition write logs of this namespace. */
  readonly writeLog: WriteLogReader;

  /**
   * Resolves once every change applied so far would survive a crash (a group commit) when the
   * namespace acknowledges writes only once durable (commit-to-device); at once otherwise. The
   * shipper waits for it before producing, so a destination never holds a version the source
   * loses in a crash.
   */
  durable?(): Promise<void>;

  /** Removes all records (of one set, or all) with LUT <= beforeLutMs (default: now). Durable. */
  truncate(set: string | undefined, beforeLutMs?: number): Promise<number>;

  /**
   * Makes client writes wait, after replication and before the answer, for `gate` (when it
   * returns a promise for that version; undefined = no wait). A rejected gate fails the write
   * with TIMEOUT (the version stays stored: in doubt). Returns the remover. The shipper's RPO-0
   * mode uses it: a write is acknowledged only once its version is in Kafka.
   */
  addAckGate?(gate: AckGate): () => void;

  /** Fenced: ordinary client writes answer FORBIDDEN; replicated writes still apply. */
  setFenced(fenced: boolean): void;
  readonly fenced: boolean;

  /** Namespace statistics as info `namespace/<ns>` reports them (name -> value). */
  stats(): Record<string, string | number | boolean>;
  /** Set names with their object counts. */
  sets(): Array<{ name: string; objects: number; tombstones: number }>;
  /** Bin names seen in this namespace. */
  binNames(): string[];

  /** Dynamic configuration (info set-config); returns false when the key is not settable. */
  setConfig(key: string, value: string): boolean;
  getConfig(): Record<string, string | number | boolean>;
}

/** A client write's stored version, as an acknowledgement gate sees it. */
export interface GatedVersion {
  digest: Buffer;
  set: string;
  generation: number;
  lutMs: number;
  tombstone: boolean;
}
export type AckGate = (v: GatedVersion) => Promise<void> | undefined;

/**
 * Which partitions this node masters, as the cluster's partition table says (masters do not
 * depend on a namespace's replication factor). Absent on a node without a cluster: it masters
 * every partition.
 */
export interface PartitionOwnership {
  isMaster(pid: number): boolean;
  /**
   * True when this node executes the client writes of pid in namespace now: the final master
   * once its copy is full, the acting master (the old master, holding a full copy) while the
   * final master is still being filled. What the XDR shipper follows.
   */
  isWorkingMaster?(namespace: string, pid: number): boolean;
  /** Goes up whenever working masters may have changed (membership or partition versions). */
  rolesGeneration?(): number;
  /** Called after every partition-table change (membership change). */
  onChange(cb: () => void): void;
}

export interface StoreNode {
  /** Stable node id: uppercase hex, at most 19 characters. */
  readonly nodeId: string;
  /** Partition mastership in a cluster; undefined when the node is alone (masters everything). */
  readonly ownership?: PartitionOwnership | undefined;
  namespace(name: string): StoreNamespace | undefined;
  namespaceNames(): string[];
  /** Node-wide statistics (info `statistics`). */
  stats(): Record<string, string | number | boolean>;
  /** Flushes and persists a warm-restart snapshot. */
  close(): Promise<void>;
}

export type { Bin };

/** Parsed arguments of an info command: `name:k=v;k=v` or `name/a/b`. */
export interface InfoRequest {
  /** The command exactly as received (echoed back in the reply). */
  raw: string;
  name: string;
  params: Record<string, string>;
  positional: string[];
}

/** Answers one info command with its value (no name, no tab, no newline). */
export type InfoHandler = (req: InfoRequest) => string | Promise<string>;

/**
 * One value of a Prometheus metric family. Components describe their metrics with these and the
 * process edge (ops/prometheus.ts) exposes them, so store/ needs no metrics library.
 */
export interface MetricSample {
  name: string;
  help: string;
  /** A counter is a running total since the process started. */
  type: 'gauge' | 'counter';
  value: number;
  labels?: Record<string, string>;
}

/**
 * Something that runs inside a node process beside the store: the XDR shipper is one. The node
 * owns this interface so `store` imports nothing of `shipper`.
 */
export interface NodeExtension {
  readonly name: string;
  start(node: StoreNode): Promise<void>;
  stop(): Promise<void>;
  /** Extra info commands this extension answers (name -> handler). */
  infoCommands?(): Record<string, InfoHandler>;
  /** Samples for the node's /metrics (ops renders them with prom-client). */
  metrics?(): MetricSample[];
  /** JSON-able state for the node's /stats, under the extension's name. */
  stats?(): unknown;
}
