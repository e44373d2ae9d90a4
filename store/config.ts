/**
 * Store node configuration (convict): one file per node, every option also settable by
 * environment variable, validation errors that name the key and the bad value.
 *
 * Node keys have their own variables (FERRY_PORT, FERRY_DATA, ...). Namespace keys are
 * validated per namespace against their own schema; `FERRY_NS_<KEY>` (e.g. FERRY_NS_DEFAULT_TTL,
 * FERRY_NS_STORAGE_ENGINE) overrides a key for every namespace.
 */
import convict from 'convict';
import { join, resolve } from 'node:path';
import { ConflictPolicy, NAMESPACE_NAME_BYTES_MAX, TTL_S_MAX } from './types.js';

export class ConfigError extends Error {
  readonly code = 'CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const MiB = 1024 * 1024;

function intIn(min: number, max: number) {
  return (v: unknown) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new Error(`must be an integer from ${min} to ${max}`);
    }
  };
}

const nodeSchema = {
  'node-id': { doc: 'Node id (hex, at most 16 digits); empty = generated once and kept in the data directory', format: String, default: '', env: 'FERRY_NODE_ID' },
  data: { doc: 'Data directory', format: String, default: './data', env: 'FERRY_DATA', arg: 'data' },
  'cluster-name': { doc: 'Cluster name clients may check', format: String, default: 'ferry', env: 'FERRY_CLUSTER_NAME' },
  'shutdown-timeout-s': { doc: 'Longest a SIGTERM shutdown may take before the node exits anyway, logging what it could not finish', format: intIn(1, 3600), default: 10, env: 'FERRY_SHUTDOWN_TIMEOUT_S' },
  service: {
    address: { doc: 'Address the Aerospike service listens on', format: String, default: '127.0.0.1', env: 'FERRY_HOST', arg: 'host' },
    'advertise-address': { doc: 'Address clients and peers are told to use for this node (needed when listening on 0.0.0.0); empty = service.address', format: String, default: '', env: 'FERRY_ADVERTISE_ADDRESS' },
    port: { doc: 'Aerospike service port (0 = any free port)', format: intIn(0, 65535), default: 3000, env: 'FERRY_PORT', arg: 'port' },
    'max-connections': { doc: 'Client connections accepted at once', format: intIn(1, 1_000_000), default: 10_000, env: 'FERRY_MAX_CONNECTIONS' },
  },
  'rack-id': { doc: 'Rack id (0..1000000) for rack-aware replica placement; -1 = none', format: intIn(-1, 1_000_000), default: -1, env: 'FERRY_RACK_ID' },
  heartbeat: {
    seeds: { doc: 'Heartbeat addresses (host:port) of other nodes to join; empty = a one-node cluster', format: Array, default: [] as string[], env: 'FERRY_HEARTBEAT_SEEDS' },
    address: { doc: 'Address the heartbeat listens on; empty = service.address', format: String, default: '', env: 'FERRY_HEARTBEAT_ADDRESS' },
    'advertise-address': { doc: 'Heartbeat address other nodes are told to use; empty = service.advertise-address, else heartbeat.address', format: String, default: '', env: 'FERRY_HEARTBEAT_ADVERTISE_ADDRESS' },
    port: { doc: 'Heartbeat (and fabric) port; 0 = any free port; -1 = off without seeds, any free port with seeds', format: intIn(-1, 65535), default: -1, env: 'FERRY_HEARTBEAT_PORT' },
    'interval-ms': { doc: 'Milliseconds between heartbeat pulses', format: intIn(10, 600_000), default: 150, env: 'FERRY_HEARTBEAT_INTERVAL_MS' },
    'timeout-count': { doc: 'Missed pulses after which a node is gone', format: intIn(3, 1000), default: 10, env: 'FERRY_HEARTBEAT_TIMEOUT_COUNT' },
    'remember-peers': {
      doc: 'Remember the peers of the last multi-node membership (data/cluster-peers.json) and use them as seeds at the next start, so a restarted node always rejoins its cluster; false = configured seeds only',
      format: Boolean,
      default: true,
      env: 'FERRY_HEARTBEAT_REMEMBER_PEERS',
    },
  },
  metrics: {
    port: { doc: 'Prometheus /metrics HTTP port (0 = off)', format: intIn(0, 65535), default: 0, env: 'FERRY_METRICS_PORT', arg: 'metrics-port' },
  },
  xdr: {
    doc: 'XDR shipping: { site, destinations: [...] } (validated by the shipper, see README)',
    format: Object,
    default: {} as Record<string, unknown>,
    env: 'FERRY_XDR',
  },
  namespaces: {
    doc: 'Namespaces: a list of objects with the namespace keys (see README)',
    format: Array,
    default: [{ name: 'test' }] as Array<Record<string, unknown>>,
    env: 'FERRY_NAMESPACES',
  },
};

const nsSchema = {
  name: { format: String, default: 'test' },
  'storage-engine': { doc: 'memory or device', format: ['memory', 'device'], default: 'device', env: 'FERRY_NS_STORAGE_ENGINE' },
  files: { doc: 'Device files (or block devices); empty = <data>/<ns>/device-0.dat', format: Array, default: [] as string[], env: 'FERRY_NS_FILES' },
  filesize: { doc: 'Bytes per device file', format: intIn(4 * MiB, 2 ** 50), default: 1024 * MiB, env: 'FERRY_NS_FILESIZE' },
  'memory-size': { doc: 'Bytes of record data a memory namespace may hold', format: intIn(4 * MiB, 2 ** 46), default: 256 * MiB, env: 'FERRY_NS_MEMORY_SIZE' },
  'write-block-size': { doc: 'Write block bytes (power of two, 64 KiB..8 MiB)', format: (v: unknown) => { intIn(65536, 8 * MiB)(v); if (((v as number) & ((v as number) - 1)) !== 0) throw new Error('must be a power of two'); }, default: MiB, env: 'FERRY_NS_WRITE_BLOCK_SIZE' },
  'flush-max-ms': { doc: 'Longest a buffered write waits before it is written to the device', format: intIn(1, 60_000), default: 1000, env: 'FERRY_NS_FLUSH_MAX_MS' },
  'commit-to-device': { doc: 'Acknowledge writes only once durable (group commit)', format: Boolean, default: false, env: 'FERRY_NS_COMMIT_TO_DEVICE' },
  'defrag-lwm-pct': { doc: 'Blocks with less live data than this are defragmented', format: intIn(1, 99), default: 50, env: 'FERRY_NS_DEFRAG_LWM_PCT' },
  'defrag-sleep-ms': { doc: 'Pause between defrag slices', format: intIn(1, 10_000), default: 5, env: 'FERRY_NS_DEFRAG_SLEEP_MS' },
  'read-cache-blocks': { doc: 'Recently written blocks kept in memory for reads', format: intIn(1, 100_000), default: 64, env: 'FERRY_NS_READ_CACHE_BLOCKS' },
  'default-ttl': { doc: 'TTL (s) for writes asking for the namespace default; 0 = never expire', format: intIn(0, TTL_S_MAX), default: 0, env: 'FERRY_NS_DEFAULT_TTL' },
  'nsup-period': { doc: 'Expiration pass period (s); 0 = no background expiration', format: intIn(0, 86_400), default: 120, env: 'FERRY_NS_NSUP_PERIOD' },
  'high-water-disk-pct': { doc: 'Evict soonest-expiring records above this device use (0 = off)', format: intIn(0, 100), default: 0, env: 'FERRY_NS_HIGH_WATER_DISK_PCT' },
  'high-water-memory-pct': { doc: 'Evict above this share of index-memory-size (0 = off)', format: intIn(0, 100), default: 0, env: 'FERRY_NS_HIGH_WATER_MEMORY_PCT' },
  'index-memory-size': { doc: 'Index memory the high-water-memory-pct refers to', format: intIn(MiB, 2 ** 46), default: 4096 * MiB, env: 'FERRY_NS_INDEX_MEMORY_SIZE' },
  'stop-writes-pct': { doc: 'Refuse writes above this device use', format: intIn(1, 100), default: 90, env: 'FERRY_NS_STOP_WRITES_PCT' },
  'stop-writes-sys-memory-pct': { doc: 'Refuse writes while the host (or the container memory cgroup) has used this share of its memory (0 = off), as Aerospike', format: intIn(0, 100), default: 90, env: 'FERRY_NS_STOP_WRITES_SYS_MEMORY_PCT' },
  'memory-budget': { doc: 'Bytes the index and block caches of the namespace may use; past it writes are refused (0 = no budget)', format: intIn(0, 2 ** 46), default: 0, env: 'FERRY_NS_MEMORY_BUDGET' },
  'transaction-pending-limit': { doc: 'Commands queued on one key before KEY_BUSY', format: intIn(1, 1_000_000), default: 20, env: 'FERRY_NS_TRANSACTION_PENDING_LIMIT' },
  'max-record-size': { doc: 'Largest record in bytes; 0 = the write block size', format: intIn(0, 8 * MiB), default: 0, env: 'FERRY_NS_MAX_RECORD_SIZE' },
  'tomb-raider-eligible-age': { doc: 'Seconds a tombstone is kept before it may be reclaimed', format: intIn(0, TTL_S_MAX), default: 86_400, env: 'FERRY_NS_TOMB_RAIDER_ELIGIBLE_AGE' },
  'tomb-raider-period': { doc: 'Seconds between tombstone reclamation passes (0 = off)', format: intIn(0, 86_400 * 30), default: 86_400, env: 'FERRY_NS_TOMB_RAIDER_PERIOD' },
  'conflict-resolution-policy': { doc: 'XDR apply policy', format: [ConflictPolicy.GENERATION, ConflictPolicy.LAST_UPDATE_TIME], default: ConflictPolicy.GENERATION as string, env: 'FERRY_NS_CONFLICT_RESOLUTION_POLICY' },
  'replication-factor': { doc: 'Copies of each record in a cluster (master + replicas); at most the cluster size', format: intIn(1, 8), default: 2, env: 'FERRY_NS_REPLICATION_FACTOR' },
  fenced: { doc: 'Start passive: refuse client writes, accept replicated ones (a later set-config fenced=... persists and wins)', format: Boolean, default: false, env: 'FERRY_NS_FENCED' },
  'write-log-entries': { doc: 'Write log ring size in entries (64 B each)', format: intIn(1024, 1 << 28), default: 1 << 20, env: 'FERRY_NS_WRITE_LOG_ENTRIES' },
};

export interface NamespaceConfig {
  name: string;
  storageEngine: 'memory' | 'device';
  files: string[];
  filesize: number;
  memorySize: number;
  writeBlockSize: number;
  flushMaxMs: number;
  commitToDevice: boolean;
  defragLwmPct: number;
  defragSleepMs: number;
  readCacheBlocks: number;
  defaultTtlS: number;
  nsupPeriodS: number;
  highWaterDiskPct: number;
  highWaterMemoryPct: number;
  indexMemorySize: number;
  stopWritesPct: number;
  memoryBudget: number;
  /** 0 or absent: off (configs built in code, as the simulator's, leave it out). */
  stopWritesSysMemoryPct?: number;
  transactionPendingLimit: number;
  maxRecordSize: number;
  tombRaiderEligibleAgeS: number;
  tombRaiderPeriodS: number;
  conflictPolicy: 'generation' | 'last-update-time';
  writeLogEntries: number;
  replicationFactor: number;
  fenced: boolean;
  /** Directory holding this namespace's files. */
  dir: string;
}

export interface HeartbeatConfig {
  /** False: a one-node cluster (no heartbeat listener, no seeds). */
  enabled: boolean;
  seeds: Array<{ host: string; port: number }>;
  host: string;
  /** Heartbeat host announced to peers. */
  advertiseHost: string;
  port: number;
  intervalMs: number;
  timeoutCount: number;
  /** Remembered peers (cluster-peers.json in the data directory) join the seeds at start. */
  rememberPeers: boolean;
}

export interface NodeConfig {
  nodeId: string;
  /** Undefined = no rack. */
  rackId: number | undefined;
  heartbeat: HeartbeatConfig;
  data: string;
  clusterName: string;
  shutdownTimeoutS: number;
  host: string;
  /** Host clients and peers use to reach this node's service port. */
  advertiseHost: string;
  port: number;
  maxConnections: number;
  metricsPort: number;
  namespaces: NamespaceConfig[];
  /** The raw `xdr` object; the shipper validates it. */
  xdr: Record<string, unknown>;
}

export interface LoadOptions {
  /** Config file (JSON). */
  file?: string;
  /** Values from the command line, by schema key (e.g. { 'service.port': 3001 }). */
  overrides?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}

/** Loads and validates a node configuration; throws ConfigError naming the key and value. */
export function loadNodeConfig(o: LoadOptions = {}): NodeConfig {
  const env = o.env ?? process.env;
  const c = convict(nodeSchema, { env, args: [] });
  try {
    if (o.file) c.loadFile(o.file);
    for (const [k, v] of Object.entries(o.overrides ?? {})) if (v !== undefined) c.set(k as never, v as never);
    c.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(`invalid configuration${o.file ? ` in ${o.file}` : ''}: ${(err as Error).message}`);
  }
  const data = resolve(c.get('data'));
  const nsList = c.get('namespaces') as unknown[];
  if (nsList.length === 0) throw new ConfigError('invalid configuration: namespaces: at least one namespace is required');
  const names = new Set<string>();
  const namespaces = nsList.map((raw, i) => {
    const ns = loadNamespace(raw, i, data, env);
    if (names.has(ns.name)) throw new ConfigError(`invalid configuration: namespaces[${i}].name: duplicate namespace "${ns.name}"`);
    names.add(ns.name);
    return ns;
  });
  const nodeId = c.get('node-id');
  if (nodeId !== '' && !/^[0-9A-Fa-f]{1,16}$/.test(nodeId)) {
    throw new ConfigError(`invalid configuration: node-id: must be 1 to 16 hex digits: value was "${nodeId}"`);
  }
  const seeds = (c.get('heartbeat.seeds') as unknown[]).map((v, i) => parseSeed(v, i));
  const hbPort = c.get('heartbeat.port');
  const rackId = c.get('rack-id');
  return {
    nodeId: nodeId.toUpperCase(),
    rackId: rackId < 0 ? undefined : rackId,
    heartbeat: {
      enabled: seeds.length > 0 || hbPort >= 0,
      seeds,
      host: c.get('heartbeat.address') || c.get('service.address'),
      advertiseHost: c.get('heartbeat.advertise-address') || c.get('service.advertise-address') || c.get('heartbeat.address') || c.get('service.address'),
      port: Math.max(hbPort, 0),
      intervalMs: c.get('heartbeat.interval-ms'),
      timeoutCount: c.get('heartbeat.timeout-count'),
      rememberPeers: c.get('heartbeat.remember-peers'),
    },
    data,
    clusterName: c.get('cluster-name'),
    shutdownTimeoutS: c.get('shutdown-timeout-s'),
    host: c.get('service.address'),
    advertiseHost: c.get('service.advertise-address') || c.get('service.address'),
    port: c.get('service.port'),
    maxConnections: c.get('service.max-connections'),
    metricsPort: c.get('metrics.port'),
    namespaces,
    xdr: c.get('xdr') as Record<string, unknown>,
  };
}

/** `host:port` (IPv6 hosts in brackets) from heartbeat.seeds[i]. */
export function parseSeed(v: unknown, i: number | string): { host: string; port: number } {
  const where = typeof i === 'number' ? `heartbeat.seeds[${i}]` : i;
  const m = typeof v === 'string' ? /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(v.trim()) : null;
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new ConfigError(`invalid configuration: ${where}: must be host:port: value was ${JSON.stringify(v)}`);
  return { host: (m[1] ?? m[2])!, port };
}

function loadNamespace(raw: unknown, i: number, data: string, env: NodeJS.ProcessEnv): NamespaceConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`invalid configuration: namespaces[${i}]: must be an object: value was ${JSON.stringify(raw)}`);
  }
  const c = convict(nsSchema, { env, args: [] });
  try {
    // File values win over the schema default; FERRY_NS_* variables win over both.
    const fromEnv = new Set(Object.entries(nsSchema).filter(([, s]) => 'env' in s && env[s.env] !== undefined).map(([k]) => k));
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (!(k in nsSchema)) throw new Error(`${k}: unknown namespace key`);
      if (!fromEnv.has(k)) c.set(k as never, v as never);
    }
    c.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(`invalid configuration: namespaces[${i}].${(err as Error).message.replace(/^\s+/, '')}`);
  }
  const name = c.get('name');
  if (!/^[A-Za-z0-9_-]+$/.test(name) || Buffer.byteLength(name) > NAMESPACE_NAME_BYTES_MAX) {
    throw new ConfigError(`invalid configuration: namespaces[${i}].name: must be 1 to ${NAMESPACE_NAME_BYTES_MAX} letters, digits, '_' or '-': value was "${name}"`);
  }
  const dir = join(data, name);
  const engine = c.get('storage-engine') as 'memory' | 'device';
  const files = (c.get('files') as string[]).map((f) => resolve(f));
  const block = c.get('write-block-size');
  const maxRecord = c.get('max-record-size') || block;
  if (maxRecord > block) {
    throw new ConfigError(`invalid configuration: namespaces[${i}].max-record-size: must not exceed write-block-size (${block}): value was ${maxRecord}`);
  }
  return {
    name,
    storageEngine: engine,
    files: engine === 'device' ? (files.length > 0 ? files : [join(dir, 'device-0.dat')]) : [],
    filesize: c.get('filesize'),
    memorySize: c.get('memory-size'),
    writeBlockSize: block,
    flushMaxMs: c.get('flush-max-ms'),
    commitToDevice: c.get('commit-to-device'),
    defragLwmPct: c.get('defrag-lwm-pct'),
    defragSleepMs: c.get('defrag-sleep-ms'),
    readCacheBlocks: c.get('read-cache-blocks'),
    defaultTtlS: c.get('default-ttl'),
    nsupPeriodS: c.get('nsup-period'),
    highWaterDiskPct: c.get('high-water-disk-pct'),
    highWaterMemoryPct: c.get('high-water-memory-pct'),
    indexMemorySize: c.get('index-memory-size'),
    stopWritesPct: c.get('stop-writes-pct'),
    memoryBudget: c.get('memory-budget'),
    stopWritesSysMemoryPct: c.get('stop-writes-sys-memory-pct'),
    transactionPendingLimit: c.get('transaction-pending-limit'),
    maxRecordSize: maxRecord,
    tombRaiderEligibleAgeS: c.get('tomb-raider-eligible-age'),
    tombRaiderPeriodS: c.get('tomb-raider-period'),
    conflictPolicy: c.get('conflict-resolution-policy') as 'generation' | 'last-update-time',
    writeLogEntries: c.get('write-log-entries'),
    replicationFactor: c.get('replication-factor'),
    fenced: c.get('fenced'),
    dir,
  };
}
