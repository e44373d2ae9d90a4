/**
 * Info commands a ferry node answers beyond Aerospike's own (the wire server's info.ts): ferry's
 * operational commands, used by the `ferry` CLI. Each returns a single value string.
 *
 * - `ferry-node` -> `node-id=<id>;namespaces=<a,b>;uptime=<s>`
 * - `ferry-checksums:namespace=<ns>[;from=<pid>;to=<pid>]` -> `<pid>:<count>:<tombstones>:<hash hex>;...`
 *   (non-empty partitions of the range only; see store/checksums.ts)
 * - `ferry-digests:namespace=<ns>;partition=<pid>` -> `<digest hex>:<gen>:<lut ms>:<0|1>;...`
 * - `ferry-record:namespace=<ns>;digest=<hex 40>` -> this node's copy of one record as JSON
 *   (set, key, generation, LUT, void time, tombstone, origin, bins with base64 bytes), or `none`
 *   (failback reads both sites' versions of a differing key with it; ask the master)
 *
 * Errors answer `ERROR:<code>:<message>` (4 PARAMETER, 20 namespace not found).
 */
import type { InfoHandler, InfoRequest } from './api.js';
import { checksums, formatChecksums, formatListing, partitionListing, type PartitionChecksum } from './checksums.js';
import type { Namespace } from './namespace/namespace.js';
import type { FerryNode } from './node.js';
import { PARTITION_COUNT, ResultCode } from './types.js';
import { yieldToLoop } from './runtime/index.js';
import { infoError } from './wire/info-codec.js';

/** Partitions checksummed between two yields to the event loop (keeps the node responsive). */
export const CHECKSUM_PARTITIONS_PER_SLICE = 64;

const { PARAMETER, NAMESPACE_NOT_FOUND } = ResultCode;

/** A bad info parameter: answered as the registered result code PARAMETER (store/wire/errors.ts), never thrown out of this module. */
class InfoParamError extends Error {
  readonly code = PARAMETER;
  constructor(message: string) {
    super(message);
    this.name = 'InfoParamError';
  }
}

function pidParam(req: InfoRequest, name: string, dflt?: number): number {
  const v = req.params[name];
  if (v === undefined) {
    if (dflt === undefined) throw new InfoParamError(`missing ${name}`);
    return dflt;
  }
  const n = Number(v);
  if (!/^\d+$/.test(v) || n >= PARTITION_COUNT) throw new InfoParamError(`${name} must be a partition id 0..${PARTITION_COUNT - 1}`);
  return n;
}

function nsParam(node: FerryNode, req: InfoRequest): Namespace | string {
  const name = req.params['namespace'] ?? req.params['ns'];
  if (!name) return infoError(PARAMETER, 'missing namespace');
  return node.namespace(name) ?? infoError(NAMESPACE_NOT_FOUND, `namespace not found: ${name}`);
}


async function checksumsCommand(node: FerryNode, req: InfoRequest): Promise<string> {
  const ns = nsParam(node, req);
  if (typeof ns === 'string') return ns;
  try {
    const from = pidParam(req, 'from', 0);
    const to = pidParam(req, 'to', PARTITION_COUNT - 1);
    if (from > to) throw new InfoParamError(`from ${from} > to ${to}`);
    const out: PartitionChecksum[] = [];
    for (let p = from; p <= to; p += CHECKSUM_PARTITIONS_PER_SLICE) {
      if (p > from) await yieldToLoop(node.timers);
      out.push(...checksums(ns.store, p, Math.min(to, p + CHECKSUM_PARTITIONS_PER_SLICE - 1), ns.currentVoidS()));
    }
    return formatChecksums(out);
  } catch (err) {
    if (err instanceof InfoParamError) return infoError(err.code, err.message);
    throw err;
  }
}

function digestsCommand(node: FerryNode, req: InfoRequest): string {
  const ns = nsParam(node, req);
  if (typeof ns === 'string') return ns;
  try {
    return formatListing(partitionListing(ns.store, pidParam(req, 'partition'), ns.currentVoidS()));
  } catch (err) {
    if (err instanceof InfoParamError) return infoError(err.code, err.message);
    throw err;
  }
}

/** One record version as JSON (what `ferry failback` lists and copies). */
function recordCommand(node: FerryNode, req: InfoRequest): string {
  const ns = nsParam(node, req);
  if (typeof ns === 'string') return ns;
  const hex = req.params['digest'] ?? '';
  if (!/^[0-9a-fA-F]{40}$/.test(hex)) return infoError(PARAMETER, 'digest must be 40 hex digits');
  const v = ns.readVersion(Buffer.from(hex, 'hex'));
  if (!v) return 'none';
  return JSON.stringify({
    set: v.set,
    ...(v.key ? { key: { type: v.key.type, b64: v.key.bytes.toString('base64') } } : {}),
    generation: v.generation,
    lutMs: v.lutMs,
    voidTimeS: v.voidTimeS,
    tombstone: v.tombstone,
    origin: v.origin ?? 'local',
    bins: v.bins.map((b) => ({ name: b.name, type: b.type, b64: b.bytes.toString('base64') })),
  });
}

export function nodeInfoCommands(node: FerryNode): Record<string, InfoHandler> {
  return {
    'ferry-record': (req) => recordCommand(node, req),
    'ferry-node': () => `node-id=${node.nodeId};namespaces=${node.namespaceNames().join(',')};uptime=${node.stats().uptime}`,
    'ferry-checksums': (req) => checksumsCommand(node, req),
    'ferry-digests': (req) => digestsCommand(node, req),
  };
}
