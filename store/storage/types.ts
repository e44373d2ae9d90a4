/**
 * The contract between a namespace (record semantics, policies, locks, TTL) and its storage
 * (primary index + where record bodies live). Storage is deliberately dumb: it never decides
 * generations, LUTs or policies; it keeps what the namespace tells it, durably, and finds it
 * again after a restart.
 *
 * Two implementations: DeviceStorage (log-structured files/block devices, write blocks, defrag,
 * read cache, cold/warm restart) and MemoryStorage (same index, bodies in memory, no
 * persistence).
 *
 * Concurrency: the node is one event loop. All methods except `open`, `commit` and `close` are
 * synchronous and never yield, so a namespace holding a record "lock" (its per-digest queue)
 * sees a consistent index. Reads of bodies not in the write buffer or read cache use
 * synchronous pread: on SSD/page cache that is cheaper than a threadpool round trip.
 */
import type { RecordMeta, PartitionId } from '../types.js';

/** Index flags stored per record. */
export interface StoredMeta extends RecordMeta {
  /** Set id (0 = no set); resolve names with `setName()`. */
  setId: number;
  /** A user key is stored with the record body. */
  hasKey: boolean;
}

/** Space and count figures of one namespace's storage. */
export interface StorageStats {
  /** Records in the index, tombstones included. */
  records: number;
  tombstones: number;
  /** Bytes of live record data (bodies plus on-device headers). */
  usedBytes: number;
  /** Capacity in bytes (device size, or memory budget). */
  totalBytes: number;
  /** Percentage of capacity that is free (Aerospike's device_available_pct); 100 for memory. */
  availablePct: number;
  /** Memory held by the primary index, bytes. */
  indexBytes: number;
  /** Records whose checksum failed on read or scan. */
  checksumErrors: number;
  /** Blocks defragmented so far. */
  defragBlocks: number;
}

/** What open() found and how long it took. */
export interface OpenReport {
  mode: 'new' | 'warm' | 'cold' | 'memory';
  records: number;
  tombstones: number;
  durationMs: number;
  /** Bytes read from the devices while opening. */
  bytesRead: number;
  /** Corrupt records/blocks skipped (reported, never returned as data). */
  corrupt: number;
}

export interface Storage {
  /**
   * Loads the index: warm from a clean-shutdown snapshot when one is valid, else a cold scan of
   * all blocks (later LUT wins; tombstones respected). Must be called once before anything else.
   */
  open(): Promise<OpenReport>;

  /** Fills `out` with the record's metadata; false when the digest is not in the index. */
  lookup(digest: Buffer, out: StoredMeta): boolean;

  /**
   * The record body bytes exactly as last written, or undefined if absent/tombstone.
   * Throws StorageError CHECKSUM (and counts it) when the stored bytes fail their checksum.
   */
  readBody(digest: Buffer): Buffer | undefined;

  /** Writes a new version of a record (index updated at once; bytes buffered). */
  write(digest: Buffer, meta: StoredMeta, setName: string, body: Buffer): void;

  /** Writes a tombstone carrying generation and LUT (durable delete). */
  writeTombstone(digest: Buffer, meta: StoredMeta, setName: string): void;

  /**
   * Forgets a record entirely (expired, evicted, or a tombstone no longer needed). On a device
   * this must not let an older version reappear on cold restart: implementations record it as
   * needed (e.g. by keeping a tombstone until older versions are defragmented away).
   */
  drop(digest: Buffer): void;

  /** Resolves when everything written so far is durable (group commit: callers share one sync). */
  commit(): Promise<void>;

  /** Calls `visit` for every index entry of a partition (tombstones included). Must not mutate during the walk. */
  forEachInPartition(pid: PartitionId, visit: (digest: Buffer, meta: StoredMeta) => void): void;

  /** Number of index entries (tombstones included) in a partition. */
  partitionCount(pid: PartitionId): number;

  /** Set id for a name, assigning a new one if needed; throws StorageError SET_LIMIT past the limit. */
  setId(name: string): number;
  /** Set name for an id ('' for 0). */
  setName(id: number): string;

  stats(): StorageStats;

  /** Flushes, and on a clean shutdown persists what a warm restart needs. */
  close(): Promise<void>;
}
