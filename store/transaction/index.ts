/** The transaction layer: the record lock and the steps of a transaction (see transaction.ts). */
export { KEY_BUSY, KeyLocks } from './key-locks.js';
export { ReplicationFailed, commitStored, complete, type Computed, type Durability, type Replicator, type WrittenVersion } from './transaction.js';
export type { TransactionContext, TransactionCounters, VersionToStore } from './context.js';
export { computeCommand } from './write.js';
export { computeRead } from './read.js';
export { computeDelete } from './delete.js';
export { compareVersions, computeReplicated } from './replicated.js';
export { computeReplica, computeReplicaEncoded, type EncodedVersion } from './replica.js';
export { fail, isExpired, nextMeta, nowVoidS, ok, voidTimeFor } from './record-meta.js';
