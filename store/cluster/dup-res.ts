/**
 * Duplicate resolution at transaction time. While a partition's copies of different lineages
 * (a split healed, a node alone served writes) or the subsets of a merge are not merged into the
 * working master's copy yet, a client write there could run on a version older than one another
 * copy holds: both writes then carry the same generation and one is lost. So before such a write
 * runs (record lock held), the working master asks each copy not merged yet for its version of
 * the key (PartitionBalance.duplicatesOf) and stores the best first, in version order
 * (generation, then LUT), replicated to its replicas like any write (Aerospike's duplicate resolution; there the
 * "duplicates" are the same set). Outside rebalances nothing is asked.
 *
 * Fabric (RebalanceOp.DUP over FabricRpc): request u8 namespace length, namespace, 20-byte
 * digest; answer empty (no such record) or the record in device format with its CRC (checked
 * before it is used). A copy that does not answer within DUP_RES_TIMEOUT_MS fails the write with
 * TIMEOUT (nothing applied; the client retries), rather than risk the lost write.
 */
import { DIGEST_BYTES } from '../types.js';
import { checkRecord, decodeRecord, encodeRecord, type StoredRecord } from '../storage/record-format.js';
import type { Namespace } from '../namespace/namespace.js';
import type { PartitionBalance } from './balance.js';
import { RebalanceOp, type FabricRpc } from './fabric-rpc.js';
import { partitionOf } from '../digest.js';

/** How long a write waits for a duplicate copy's version. */
export const DUP_RES_TIMEOUT_MS = 500;

export class DuplicateResolutionFailed extends Error {
  readonly code = 'DUP_RES_FAILED' as const;
  readonly retriable = true;
  constructor(message: string) {
    super(message);
    this.name = 'DuplicateResolutionFailed';
  }
}

export class DuplicateResolution {
  readonly counters = { dup_res_asked: 0, dup_res_answered: 0, dup_res_timeouts: 0 };

  constructor(
    private readonly rpc: FabricRpc,
    private readonly balance: PartitionBalance,
    private readonly namespaces: ReadonlyMap<string, Namespace>,
  ) {
    rpc.serve(RebalanceOp.DUP, (b) => this.#answer(b));
  }

  /** Installs the resolver on every namespace. */
  attach(): void {
    for (const [name, ns] of this.namespaces) ns.duplicateResolver = (digest) => this.#resolve(name, digest);
  }

  #resolve(namespace: string, digest: Buffer): Promise<StoredRecord[]> | undefined {
    const from = this.balance.duplicatesOf(namespace, partitionOf(digest));
    if (from.length === 0) return undefined;
    const ns = Buffer.from(namespace);
    const body = Buffer.concat([Buffer.of(ns.length), ns, digest]);
    return Promise.all(
      from.map(async (node) => {
        this.counters.dup_res_asked++;
        const r = await this.rpc.request(node, RebalanceOp.DUP, body, DUP_RES_TIMEOUT_MS);
        if (r === undefined) {
          this.counters.dup_res_timeouts++;
          throw new DuplicateResolutionFailed(`node ${node} did not answer for its copy of ${digest.toString('hex')} within ${DUP_RES_TIMEOUT_MS} ms`);
        }
        this.counters.dup_res_answered++;
        if (r.length === 0) return undefined;
        if (checkRecord(r, 0) !== 'ok') throw new DuplicateResolutionFailed(`node ${node} answered a corrupt record for ${digest.toString('hex')}`);
        const rec = decodeRecord(r, 0);
        return rec.digest.equals(digest) ? rec : undefined;
      }),
    ).then((list) => list.filter((x): x is StoredRecord => x !== undefined));
  }

  #answer(b: Buffer): Buffer {
    if (b.length < 1 || b.length !== 1 + b[0]! + DIGEST_BYTES) return Buffer.alloc(0);
    const ns = this.namespaces.get(b.subarray(1, 1 + b[0]!).toString());
    const digest = b.subarray(1 + b[0]!);
    const rec = ns?.store.read(Buffer.from(digest));
    return rec ? encodeRecord(rec, 0) : Buffer.alloc(0);
  }
}
