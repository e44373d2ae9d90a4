/**
 * XDR shipping configuration: the `xdr` object of a node's config file.
 *
 *   "xdr": { "site": "A", "destinations": [ { "name": "B", "brokers": ["127.0.0.1:9092"],
 *            "namespaces": ["test"], ... } ] }
 *
 * Validated with convict per destination; errors name the key (`xdr.destinations[0].brokers`).
 */
import convict from 'convict';
import { kafkaSecuritySchema, readKafkaSecurity, type KafkaSecurity } from '../kafka/security.js';

export class XdrConfigError extends Error {
  readonly code = 'CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'XdrConfigError';
  }
}

function intIn(min: number, max: number) {
  return (v: unknown) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Error(`must be an integer from ${min} to ${max}`);
  };
}

const destSchema = {
  name: { doc: 'Destination (datacenter) name', format: String, default: '' },
  brokers: { doc: 'Kafka bootstrap brokers host:port', format: Array, default: [] as string[] },
  topic: { doc: 'Topic; default ferry.<site>.<namespace>', format: String, default: '' },
  namespaces: { doc: 'Namespaces to ship', format: Array, default: [] as string[] },
  'ship-sets': { doc: 'Only these sets (empty = all)', format: Array, default: [] as string[] },
  'ignore-sets': { doc: 'Never these sets', format: Array, default: [] as string[] },
  'ship-bins': { doc: 'Only these bins (empty = all)', format: Array, default: [] as string[] },
  'ship-deletes': { doc: 'Ship deletes (tombstones)', format: Boolean, default: true },
  'ship-expirations': { doc: 'Ship expirations and evictions as tombstones', format: Boolean, default: false },
  forward: { doc: 'Also ship records applied by a receiver', format: Boolean, default: false },
  'max-records-per-s': { doc: 'Throttle (0 = none)', format: intIn(0, 10_000_000), default: 0 },
  'batch-max': { doc: 'Records per produce request', format: intIn(1, 100_000), default: 2000 },
  'batch-max-bytes': { doc: "Bytes of keys, values and headers per produce request (keep it under the destination's message.max.bytes, 1 MiB on a default Kafka)", format: intIn(1024, 256 * 1024 * 1024), default: 900_000 },
  'linger-ms': { doc: 'Wait this long for more records before producing', format: intIn(0, 10_000), default: 2 },
  'kafka-partitions': { doc: 'Partitions of a topic ferry creates', format: intIn(1, 4096), default: 16 },
  compression: { doc: 'gzip or none (none by default, as Kafka: gzip costs the source CPU, worth it on slow WAN links)', format: ['gzip', 'none'], default: 'none' },
  'checkpoint-interval-ms': { doc: 'How often checkpoints are written', format: intIn(10, 600_000), default: 1000 },
  'retry-backoff-max-ms': { doc: 'Longest pause between produce retries', format: intIn(10, 600_000), default: 1000 },
  'rpo0-namespaces': { doc: 'RPO 0: in these namespaces a client write is acknowledged only once its version is in this destination\'s Kafka (acks=all)', format: Array, default: [] as string[] },
  'rpo0-sets': { doc: 'RPO 0 per write: client writes to these sets (in any shipped namespace) wait for Kafka likewise', format: Array, default: [] as string[] },
  'rpo0-timeout-ms': { doc: 'An RPO-0 write not in Kafka within this fails with TIMEOUT (stored, shipped later: in doubt)', format: intIn(10, 600_000), default: 2000 },
  ...kafkaSecuritySchema,
};

export interface DestinationConfig {
  name: string;
  brokers: string[];
  topic: string;
  namespaces: string[];
  shipSets: string[];
  ignoreSets: string[];
  shipBins: string[];
  shipDeletes: boolean;
  shipExpirations: boolean;
  forward: boolean;
  maxRecordsPerS: number;
  batchMax: number;
  /** Bytes (keys, values, headers) per produce request; a request refused as too large is split. */
  batchMaxBytes: number;
  lingerMs: number;
  kafkaPartitions: number;
  compression: 'gzip' | 'none';
  checkpointIntervalMs: number;
  retryBackoffMaxMs: number;
  /** RPO 0 (docs/xdr.md): namespaces and sets whose client writes wait for Kafka, and how long at most. */
  rpo0Namespaces: string[];
  rpo0Sets: string[];
  rpo0TimeoutMs: number;
  /** TLS and SASL to the destination's Kafka (kafka/security.ts). */
  security: KafkaSecurity;
}

export interface XdrConfig {
  site: string;
  destinations: DestinationConfig[];
}

/** Topic of a site's namespace when the destination names none. */
export function defaultTopic(site: string, namespace: string): string {
  return `ferry.${site}.${namespace}`;
}

export function parseXdrConfig(raw: unknown): XdrConfig {
  if (raw === undefined || raw === null) return { site: '', destinations: [] };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new XdrConfigError(`invalid configuration: xdr: must be an object: value was ${JSON.stringify(raw)}`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'site' && k !== 'destinations') throw new XdrConfigError(`invalid configuration: xdr.${k}: unknown key`);
  const site = o.site ?? '';
  if (typeof site !== 'string' || (o.destinations !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(site))) {
    throw new XdrConfigError(`invalid configuration: xdr.site: must be 1 to 32 letters, digits, '_' or '-': value was ${JSON.stringify(site)}`);
  }
  const list = o.destinations ?? [];
  if (!Array.isArray(list)) throw new XdrConfigError('invalid configuration: xdr.destinations: must be a list');
  const destinations = list.map((d, i) => parseDestination(d, i, site));
  return { site, destinations };
}

function parseDestination(raw: unknown, i: number, site: string): DestinationConfig {
  const at = `xdr.destinations[${i}]`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new XdrConfigError(`invalid configuration: ${at}: must be an object`);
  const c = convict(destSchema, { env: {}, args: [] });
  try {
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (!(k in destSchema)) throw new Error(`${k}: unknown key`);
      c.set(k as never, v as never);
    }
    c.validate({ allowed: 'strict' });
  } catch (err) {
    throw new XdrConfigError(`invalid configuration: ${at}.${(err as Error).message}`);
  }
  const name = c.get('name');
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(name)) throw new XdrConfigError(`invalid configuration: ${at}.name: must be 1 to 32 letters, digits, '_' or '-': value was "${name}"`);
  const brokers = c.get('brokers') as string[];
  if (brokers.length === 0 || brokers.some((b) => typeof b !== 'string' || !/^[^:\s]+:\d+$/.test(b))) {
    throw new XdrConfigError(`invalid configuration: ${at}.brokers: must be a non-empty list of host:port: value was ${JSON.stringify(brokers)}`);
  }
  const namespaces = c.get('namespaces') as string[];
  if (namespaces.length === 0) throw new XdrConfigError(`invalid configuration: ${at}.namespaces: name at least one namespace`);
  void site;
  let security: KafkaSecurity;
  try {
    security = readKafkaSecurity((k) => c.get(k), '');
  } catch (err) {
    throw new XdrConfigError(`invalid configuration: ${at}.${(err as Error).message}`);
  }
  return {
    name,
    brokers,
    topic: c.get('topic'),
    namespaces,
    shipSets: c.get('ship-sets') as string[],
    ignoreSets: c.get('ignore-sets') as string[],
    shipBins: c.get('ship-bins') as string[],
    shipDeletes: c.get('ship-deletes'),
    shipExpirations: c.get('ship-expirations'),
    forward: c.get('forward'),
    maxRecordsPerS: c.get('max-records-per-s'),
    batchMax: c.get('batch-max'),
    batchMaxBytes: c.get('batch-max-bytes'),
    lingerMs: c.get('linger-ms'),
    kafkaPartitions: c.get('kafka-partitions'),
    compression: c.get('compression') as 'gzip' | 'none',
    checkpointIntervalMs: c.get('checkpoint-interval-ms'),
    retryBackoffMaxMs: c.get('retry-backoff-max-ms'),
    rpo0Namespaces: c.get('rpo0-namespaces') as string[],
    rpo0Sets: c.get('rpo0-sets') as string[],
    rpo0TimeoutMs: c.get('rpo0-timeout-ms'),
    security,
  };
}
