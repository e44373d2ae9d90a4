/** The transaction layer: the record lock and the steps of a transaction (see transaction.ts). */
export { KEY_BUSY, KeyLocks } from './key-locks.js';
export { complete, type Computed, type Durability, type Replicator, type WrittenVersion } from './transaction.js';
