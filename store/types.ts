/**
 * The store's public vocabulary: the typed, in-process API that the wire protocol, the shipper
 * and the receiver use. It is shaped after Aerospike's AS_MSG so the wire layer maps 1:1:
 * values keep their wire particle type and bytes (so lists, maps, GeoJSON and language blobs
 * round-trip intact), results carry Aerospike result codes, TTLs use Aerospike's encodings.
 *
 * Expected outcomes (not found, generation mismatch, key busy, stop-writes...) are returned as
 * `resultCode`; only programmer errors and unrecoverable I/O faults throw.
 */

/** Aerospike particle types (wire values). */
export const ParticleType = {
  NULL: 0,
  INTEGER: 1,
  FLOAT: 2,
  STRING: 3,
  BLOB: 4,
  JAVA_BLOB: 7,
  CSHARP_BLOB: 8,
  PYTHON_BLOB: 9,
  RUBY_BLOB: 10,
  PHP_BLOB: 11,
  ERLANG_BLOB: 12,
  VECTOR: 16,
  BOOL: 17,
  HLL: 18,
  MAP: 19,
  LIST: 20,
  GEOJSON: 23,
} as const;
export type ParticleTypeId = (typeof ParticleType)[keyof typeof ParticleType];

/** Aerospike operation types (wire values). */
export const OpType = {
  READ: 1,
  WRITE: 2,
  CDT_READ: 3,
  CDT_MODIFY: 4,
  INCR: 5,
  EXP_READ: 7,
  EXP_MODIFY: 8,
  APPEND: 9,
  PREPEND: 10,
  TOUCH: 11,
  BIT_READ: 12,
  BIT_MODIFY: 13,
  DELETE: 14,
  HLL_READ: 15,
  HLL_MODIFY: 16,
} as const;
export type OpTypeId = (typeof OpType)[keyof typeof OpType];

/** Aerospike result codes (server side, as sent in AS_MSG result_code). */
export const ResultCode = {
  OK: 0,
  SERVER_ERROR: 1,
  NOT_FOUND: 2,
  GENERATION: 3,
  PARAMETER: 4,
  RECORD_EXISTS: 5,
  BIN_EXISTS: 6,
  CLUSTER_KEY_MISMATCH: 7,
  OUT_OF_SPACE: 8,
  TIMEOUT: 9,
  ALWAYS_FORBIDDEN: 10,
  UNAVAILABLE: 11,
  INCOMPATIBLE_TYPE: 12,
  RECORD_TOO_BIG: 13,
  KEY_BUSY: 14,
  SCAN_ABORT: 15,
  UNSUPPORTED_FEATURE: 16,
  BIN_NOT_FOUND: 17,
  DEVICE_OVERLOAD: 18,
  KEY_MISMATCH: 19,
  NAMESPACE_NOT_FOUND: 20,
  BIN_NAME: 21,
  FORBIDDEN: 22,
  ELEMENT_NOT_FOUND: 23,
  ELEMENT_EXISTS: 24,
  ENTERPRISE_ONLY: 25,
  OP_NOT_APPLICABLE: 26,
  FILTERED_OUT: 27,
  LOST_CONFLICT: 28,
  XDR_KEY_BUSY: 32,
  SECURITY_NOT_ENABLED: 52,
  NOT_AUTHENTICATED: 80,
  UDF_EXECUTION: 100,
  BATCH_DISABLED: 150,
  BATCH_MAX_REQUESTS: 151,
  BATCH_QUEUES_FULL: 152,
  GEO_INVALID_GEOJSON: 160,
  SINDEX_NOT_FOUND: 201,
} as const;
export type ResultCodeId = (typeof ResultCode)[keyof typeof ResultCode];

/** Bytes of a record digest (RIPEMD-160). */
export const DIGEST_BYTES = 20;
/** Partitions per namespace, as every Aerospike client hard-codes. */
export const PARTITION_COUNT = 4096;
/** Aerospike epoch (2010-01-01T00:00:00Z) in Unix seconds: void times count from here. */
export const CITRUSLEAF_EPOCH_S = 1262304000;
/** Longest bin name in bytes. */
export const BIN_NAME_BYTES_MAX = 15;
/** Longest namespace name in bytes. */
export const NAMESPACE_NAME_BYTES_MAX = 31;
/** Longest set name in bytes. */
export const SET_NAME_BYTES_MAX = 63;
/** The set where ferry keeps its own records (XDR checkpoints): writable on a fenced namespace, never shipped. */
export const SYSTEM_SET_NAME = 'ferry-xdr';
/** Largest TTL a client may ask for: 10 years, in seconds. */
export const TTL_S_MAX = 315_360_000;

/** Request TTL encodings (record_ttl on writes). Any value in 1..TTL_S_MAX is seconds from now. */
export const Ttl = {
  /** Namespace default TTL. */
  NAMESPACE_DEFAULT: 0,
  /** Never expire (0xFFFFFFFF on the wire). */
  NEVER_EXPIRE: -1,
  /** Leave the record's expiry unchanged (0xFFFFFFFE); on create acts like NAMESPACE_DEFAULT. */
  DONT_UPDATE: -2,
} as const;

/** A partition id, 0..4095. */
export type PartitionId = number & { readonly __brand: 'PartitionId' };

/** A value exactly as it travels on the wire: particle type plus its bytes. */
export interface Value {
  type: ParticleTypeId;
  bytes: Buffer;
}

/** A named bin holding a value. */
export interface Bin extends Value {
  name: string;
}

/** A user key as sent with "send key" (types INTEGER, FLOAT, STRING, BLOB). */
export type UserKey = Value;

/** One operation of an operate command. `bin` is '' for record-level ops (TOUCH, DELETE, READ all). */
export interface Op {
  op: OpTypeId;
  bin: string;
  /** Particle type and bytes of the argument; NULL with empty bytes when there is none. */
  value: Value;
}

/** Record-exists policy (info3 / info2 bits on the wire). */
export const ExistsPolicy = {
  /** Create or update (default). */
  UPSERT: 0,
  /** Fail with RECORD_EXISTS if the record exists. */
  CREATE_ONLY: 1,
  /** Fail with NOT_FOUND if the record does not exist; merge bins. */
  UPDATE_ONLY: 2,
  /** Create or replace all bins. */
  REPLACE: 3,
  /** Fail with NOT_FOUND if missing; replace all bins. */
  REPLACE_ONLY: 4,
} as const;
export type ExistsPolicyId = (typeof ExistsPolicy)[keyof typeof ExistsPolicy];

/** Generation check policy. */
export const GenerationPolicy = {
  NONE: 0,
  /** Apply only if the record's generation equals `generation`. */
  EXPECT_EQUAL: 1,
  /** Apply only if `generation` is greater than the record's. */
  EXPECT_GREATER: 2,
} as const;
export type GenerationPolicyId = (typeof GenerationPolicy)[keyof typeof GenerationPolicy];

/** Addresses one record. */
export interface RecordAddress {
  namespace: string;
  /** Set name; '' when the record has no set. */
  set: string;
  /** 20-byte RIPEMD-160 digest. */
  digest: Buffer;
}

/** A single-record command: everything AS_MSG can ask of one record. */
export interface RecordCommand extends RecordAddress {
  /** User key sent with the command ("send key"): stored on write, checked against the stored one. */
  key?: UserKey;
  ops: Op[];
  /** Read all bins (info1 GET_ALL). */
  readAll?: boolean;
  /** Read only metadata, no bins (info1 NOBINDATA). */
  headerOnly?: boolean;
  exists?: ExistsPolicyId;
  generationPolicy?: GenerationPolicyId;
  generation?: number;
  /** Request TTL: seconds, or one of `Ttl`. */
  ttlS?: number;
  /** Durable delete (tombstone). ferry always writes tombstones; kept for protocol fidelity. */
  durableDelete?: boolean;
  /** Answer one entry per op, in order (info2 RESPOND_ALL_OPS). */
  respondAllOps?: boolean;
  /** Server-side deadline (transaction_ttl), ms; 0 = none. */
  timeoutMs?: number;
}

/** The outcome of a single-record command. */
export interface RecordResult {
  resultCode: ResultCodeId;
  /** Record generation after the command (0 if the record does not exist or was deleted). */
  generation: number;
  /** Void time in seconds since CITRUSLEAF_EPOCH_S; 0 = never expires. */
  voidTimeS: number;
  /** Bins read (or op results, with respondAllOps: one entry per op; a NULL value for none). */
  bins: Bin[];
  /** Stored user key, when the record has one and bins or a key were asked for. */
  key?: UserKey;
  /** Last-update time after the command (ms since Unix epoch); 0 when absent. */
  lutMs: number;
}

/** Metadata the primary index keeps per record. */
export interface RecordMeta {
  /** Generation, 32-bit internally (clients see the low 16 bits). */
  generation: number;
  /** Last-update time, ms since Unix epoch; strictly increasing per record, except that an expiry tombstone keeps the LUT of the version it expired (docs/xdr.md). */
  lutMs: number;
  /** Void time in seconds since CITRUSLEAF_EPOCH_S; 0 = never. */
  voidTimeS: number;
  tombstone: boolean;
}

/** A full record version as the shipper reads it and the receiver applies it. */
export interface RecordVersion extends RecordAddress, RecordMeta {
  key?: UserKey;
  /** All bins; empty for a tombstone. */
  bins: Bin[];
  /** Where the version came from; absent = written by a client of this site. */
  origin?: RecordOriginId;
}

/**
 * Where a stored version came from, kept with the record (device flag bits 2-3) so a rescan
 * after a restart or a write-log wrap can honour `forward` and `ship-expirations`.
 */
export const RecordOrigin = {
  /** Written or deleted by a client of this site. */
  LOCAL: 'local',
  /** Applied by a replicated write (a receiver). */
  REPLICATED: 'replicated',
  /** The tombstone left by expiry or eviction on this site. */
  EXPIRED: 'expired',
  /** An expiry tombstone shipped from another site and applied here. */
  REPLICATED_EXPIRED: 'replicated-expired',
} as const;
export type RecordOriginId = (typeof RecordOrigin)[keyof typeof RecordOrigin];

/** True when the version was applied from another site. */
export function isReplicatedOrigin(o: RecordOriginId | undefined): boolean {
  return o === RecordOrigin.REPLICATED || o === RecordOrigin.REPLICATED_EXPIRED;
}

/** True when the version is an expiry/eviction tombstone (here or at its source). */
export function isExpiredOrigin(o: RecordOriginId | undefined): boolean {
  return o === RecordOrigin.EXPIRED || o === RecordOrigin.REPLICATED_EXPIRED;
}

/** How a replicated write decides whether the incoming version wins. */
export const ConflictPolicy = {
  /** Higher generation wins; LUT breaks ties. */
  GENERATION: 'generation',
  /** Higher LUT wins; generation breaks ties. */
  LAST_UPDATE_TIME: 'last-update-time',
} as const;
export type ConflictPolicyId = (typeof ConflictPolicy)[keyof typeof ConflictPolicy];

/** Kinds of write-log entries. */
export const WriteKind = {
  WRITE: 1,
  DELETE: 2,
  EXPIRE: 3,
  EVICT: 4,
  /** Applied by a replicated write (from a receiver); not shipped onward unless forwarding. */
  REPLICATED_WRITE: 5,
  REPLICATED_DELETE: 6,
} as const;
export type WriteKindId = (typeof WriteKind)[keyof typeof WriteKind];

/** One entry of a per-partition write log. */
export interface WriteLogEntry {
  /** Per-partition sequence, starting at 1, gap-free. */
  sequence: bigint;
  digest: Buffer;
  generation: number;
  lutMs: number;
  kind: WriteKindId;
}

/** Time source: lives in runtime/ with the other seams; re-exported for existing importers. */
export { systemClock, type Clock } from './runtime/clock.js';
