/**
 * Error codes of the store (storage, configuration, cluster, node assembly, transactions, the
 * shipped-record codec): the registry, documented in docs/errors.md. The wire protocol's codes
 * are in wire/errors.ts.
 */
import type { AllRegistered, ErrorRegistry } from './error-registry.js';
import type { NodeStartError } from './assembly/running-node.js';
import type { ChecksumFormatError } from './checksums.js';
import type { PartitionTableError } from './cluster/partition-table.js';
import type { PartitionVersionsError } from './cluster/partition-versions.js';
import type { KnownPeersError } from './cluster/known-peers.js';
import type { DuplicateResolutionFailed } from './cluster/dup-res.js';
import type { ConfigError } from './config.js';
import type { StorageErrorCodeId } from './storage/errors.js';
import type { ReplicationFailed } from './transaction/transaction.js';
import type { ShipCodecError } from './xdr/shipped-record.js';

export const StoreErrors = {
  CHECKSUM: { meaning: 'A stored record failed its checksum or does not parse; it is reported and never returned as data.', retriable: false },
  CONFIG: { meaning: 'Bad node or storage configuration (sizes, paths, ranges); the message names the setting.', retriable: false },
  DEVICE_FULL: { meaning: 'No free write block or no space on the filesystem for the device; writes resume once space returns.', retriable: true },
  RECORD_TOO_BIG: { meaning: 'The record does not fit in one write block (write-block-size).', retriable: false },
  SET_LIMIT: { meaning: 'The namespace already holds the most sets it may (1023).', retriable: false },
  CORRUPT_FILE: { meaning: 'A snapshot or log file is unreadable or inconsistent; the store falls back to a cold scan.', retriable: false },
  CLOSED: { meaning: 'The storage was used after it was closed.', retriable: false },
  CLOSE_INCOMPLETE: { meaning: 'A close skipped what it could not write (disk full); the next start is a cold scan.', retriable: false },
  IO: { meaning: 'A device or file write failed for another reason than space (I/O error, permissions).', retriable: true },
  CHECKSUM_FORMAT: { meaning: 'A partition checksum listing (the checksums info command) does not parse.', retriable: false },
  PARTITION_TABLE: { meaning: 'A partition table is inconsistent (members, succession, replication factor).', retriable: false },
  PARTITION_VERSIONS: { meaning: 'The partition versions file of a namespace is unreadable or cannot be written; the node does not start (or retries the write).', retriable: false },
  KNOWN_PEERS: { meaning: 'The remembered peers file (cluster-peers.json) is unreadable or malformed; it is ignored and the node starts with its configured seeds.', retriable: false },
  DUP_RES_FAILED: { meaning: 'A copy of a record not yet merged did not answer duplicate resolution in time; the write fails with TIMEOUT, nothing applied.', retriable: true },
  SHIP_DECODE: { meaning: 'A shipped record (Kafka message) does not decode: wrong format, headers or bytes.', retriable: false },
  NODE_START: { meaning: 'A node failed to start; the error says at which step (store, listen, heartbeat, extension).', retriable: false },
  REPLICATION_FAILED: { meaning: 'A write was stored on the master but its replicas did not confirm it; the client sees the result code.', retriable: true },
} as const satisfies ErrorRegistry;
export type StoreErrorCodeId = keyof typeof StoreErrors;

true satisfies AllRegistered<
  | StorageErrorCodeId
  | ConfigError['code']
  | ChecksumFormatError['code']
  | PartitionTableError['code']
  | PartitionVersionsError['code']
  | KnownPeersError['code']
  | DuplicateResolutionFailed['code']
  | ShipCodecError['code']
  | NodeStartError['code']
  | ReplicationFailed['code'],
  typeof StoreErrors
>;
