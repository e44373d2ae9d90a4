/**
 * The steps of one transaction on one record, run while its key lock is held (key-locks.ts):
 *
 *   1. lock      KeyLocks.run (KEY_BUSY past transaction-pending-limit)
 *   2. compute   the new version from the local one (read, write, delete, replicated apply):
 *                synchronous, so the LUT it assigns and the write-log append happen in the same
 *                event-loop turn (the shipper's checkpoints rely on that)
 *   3. store     the version goes to the record store and the partition's write log
 *   4. replicate the explicit asynchronous point: a Replicator (the cluster, later) sends the
 *                version to the replicas and waits, the lock still held
 *   5. commit    with commit-to-device, wait for the group commit of store and write log; without
 *                it, wait only when buffered writes outran the device (bounded memory)
 *   6. ack       the caller answers the client
 *
 * Steps 2-3 are read.ts, write.ts, delete.ts and replicated.ts (pure record semantics over a
 * TransactionContext the namespace provides); this file owns 4-6.
 * A step that needs no waiting returns synchronously, so an uncontended in-memory write never
 * allocates a promise here.
 */
import type { StoredRecord } from '../storage/record-format.js';
import type { ResultCodeId, WriteKindId } from '../types.js';

/** A version stored by step 3, as step 4 ships it. */
export interface WrittenVersion {
  record: StoredRecord;
  kind: WriteKindId;
  /**
   * The record as the store encoded it (device format, sealed, padded), when step 3 just wrote
   * it: a view of the write block, valid only in the turn it was written (step 4 copies it into
   * its replica writes then, so the record is not encoded and checksummed a second time).
   */
  encoded?: Buffer;
}

/**
 * Why step 4 failed, with the result code the client gets (TIMEOUT when replicas did not answer:
 * the version is stored here, so the outcome is in doubt, as with any timeout).
 */
export class ReplicationFailed extends Error {
  readonly code = 'REPLICATION_FAILED';
  readonly retriable = true;
  constructor(
    readonly resultCode: ResultCodeId,
    message: string,
  ) {
    super(message);
    this.name = 'ReplicationFailed';
  }
}

/** Sends a stored version to the partition's replicas (step 4). Rejecting fails the transaction. */
export interface Replicator {
  replicate(written: WrittenVersion): Promise<void>;
}

/** What steps 2-3 produced: the answer, and the version when one was stored. */
export interface Computed<R> {
  result: R;
  written: WrittenVersion | undefined;
}

/** What step 5 needs of the storage under the namespace. */
export interface Durability {
  readonly commitToDevice: boolean;
  commitStore(): Promise<void>;
  commitWriteLog(): Promise<void>;
  /** Buffered writes outran the device. */
  backlogged(): boolean;
}

/** Steps 4-6: replicate (if a replicator is set), commit as configured, then the answer. */
export function complete<R>(c: Computed<R>, durability: Durability, replicator: Replicator | undefined): R | Promise<R> {
  const written = c.written;
  if (!written) return c.result;
  if (replicator) return replicator.replicate(written).then(() => commitStored(c.result, durability));
  return commitStored(c.result, durability);
}

/** Steps 5-6 of a transaction that stored a version with nothing to replicate (a replica apply). */
export function commitStored<R>(result: R, d: Durability): R | Promise<R> {
  if (d.commitToDevice) return Promise.all([d.commitStore(), d.commitWriteLog()]).then(() => result);
  // A loop that never yields still lets the flush run, and memory stays bounded.
  if (d.backlogged()) return d.commitStore().then(() => result);
  return result;
}
