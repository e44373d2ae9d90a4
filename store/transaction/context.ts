/**
 * What the compute steps of a transaction (read.ts, write.ts, delete.ts, replicated.ts) need of
 * the namespace they run in. The namespace builds one context and keeps everything else
 * (settings, expiry, eviction, stop-writes, stats) to itself.
 */
import type { IndexEntry } from '../storage/primary-index.js';
import type { RecordStore } from '../storage/record-store.js';
import type { EncodedVersion } from './replica.js';
import type { Bin, RecordOriginId, UserKey, WriteKindId } from '../types.js';
import type { WrittenVersion } from './transaction.js';

/** Counters the transaction steps update (a subset of the namespace's statistics). */
export interface TransactionCounters {
  client_read_success: number;
  client_read_not_found: number;
  client_write_success: number;
  client_delete_success: number;
  client_delete_not_found: number;
  client_lang_error: number;
  fail_generation: number;
  fail_record_too_big: number;
  fail_out_of_space: number;
  fail_forbidden: number;
  xdr_write_success: number;
  xdr_lost_conflict: number;
}

/** A version to store (step 3). */
export interface VersionToStore {
  digest: Buffer;
  set: string;
  generation: number;
  lutMs: number;
  voidTimeS: number;
  tombstone: boolean;
  key: UserKey | undefined;
  bins: Bin[];
  kind: WriteKindId;
  origin?: RecordOriginId;
}

export interface TransactionContext {
  readonly store: RecordStore;
  readonly counters: TransactionCounters;
  /** Scratch index entry (no allocation per lookup). */
  readonly entry: IndexEntry;
  readonly maxRecordBytes: number;
  readonly defaultTtlS: number;
  /** Fenced (passive site): client writes answer FORBIDDEN. */
  readonly fenced: boolean;
  /**
   * Stop-writes (disk or filesystem full, memory budget, stop-writes-pct): true when a write to
   * `set` must answer OUT_OF_SPACE (soft limits let the shipper's system records through).
   */
  refusesWrite(set: string): boolean;
  nowMs(): number;
  /** Remembers bin names for info `bins`. */
  noteBins(bins: Bin[]): void;
  /** Step 3: stores the version and appends it to its partition's write log. */
  storeVersion(v: VersionToStore): WrittenVersion;
  /** Step 3 for a version that arrived encoded (a replica write): stored as is and logged. */
  storeEncoded(v: EncodedVersion, kind: WriteKindId): void;
}
