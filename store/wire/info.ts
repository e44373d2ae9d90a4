/**
 * Info commands answered in the formats the Aerospike clients parse (docs section 2), built from
 * a StoreNode. Cluster shape (peers, partition ownership) comes from a ClusterView so a
 * multi-node owner table can fill it in later; `singleNodeView` claims every partition.
 */
import type { InfoHandler, InfoRequest, StoreNamespace, StoreNode } from '../api.js';
import { PARTITION_COUNT } from '../types.js';
import { systemClock, type Clock } from '../runtime/index.js';
import { infoError, parseInfoCommand } from './info-codec.js';

/** The build we report: selects the modern client protocol (batch-any, user-agent-set, ...). */
export const BUILD = '8.1.1.0';
export const EDITION = 'Aerospike Community Edition';
export const FEATURES = [
  'batch-any',
  'batch-index',
  'blob-bits',
  'float',
  'geo',
  'peers',
  'pipelining',
  'pquery',
  'pscans',
  'query-show',
  'replicas',
  'replicas-all',
  'replicas-master',
  'replicas-max',
  'truncate-namespace',
].join(';');
/** Bytes of one replica bitmap (4096 bits). */
export const PARTITION_BITMAP_BYTES = PARTITION_COUNT / 8;
/** Nanoseconds per millisecond (truncate lut is in ns). */
const NS_PER_MS = 1_000_000n;

export interface PeerAddress {
  host: string;
  port: number;
}
export interface Peer {
  nodeId: string;
  tlsName?: string;
  addresses: PeerAddress[];
}

/** Partition ownership of one namespace as this node reports it. */
export interface NamespaceOwnership {
  /** 0 for AP namespaces. */
  regime: number;
  /** replicas[i](pid): this node is replica i of pid (0 = master). At least one entry. */
  replicas: Array<(pid: number) => boolean>;
}

/** What this node knows about its cluster. */
export interface ClusterView {
  partitionGeneration(): number;
  peersGeneration(): number;
  /** Other nodes (never this one). */
  peers(): Peer[];
  ownership(namespace: string): NamespaceOwnership;
  clusterName(): string;
  clusterSize(): number;
  /** Cluster key, hex; stable while membership is. */
  clusterKey(): string;
  /** False while the members disagree on the cluster (absent = always stable). */
  isStable?(): boolean;
  /** Partitions this node still has to migrate (absent = none). */
  migrationsRemaining?(): number;
  /** Cluster facts of one namespace for `namespace/<ns>` (replication factor, objects by role). */
  namespaceStats?(namespace: string): Record<string, string | number | boolean>;
}

/** A one-node cluster: owns every partition as master, no peers, generations fixed at 1. */
export function singleNodeView(clusterName = 'ferry', clusterKey = '1F3A5C7E9B'): ClusterView {
  const owned: NamespaceOwnership = { regime: 0, replicas: [() => true] };
  return {
    partitionGeneration: () => 1,
    peersGeneration: () => 1,
    peers: () => [],
    ownership: () => owned,
    clusterName: () => clusterName,
    clusterSize: () => 1,
    clusterKey: () => clusterKey,
  };
}

/** Base64 of a 4096-bit bitmap, MSB first: partition p is bit 0x80 >> (p & 7) of byte p >> 3. */
export function partitionBitmapBase64(owns: (pid: number) => boolean): string {
  const bits = Buffer.alloc(PARTITION_BITMAP_BYTES);
  for (let p = 0; p < PARTITION_COUNT; p++) if (owns(p)) bits[p >> 3]! |= 0x80 >> (p & 7);
  return bits.toString('base64');
}

/** Decodes a replicas bitmap (client side). */
export function parsePartitionBitmap(b64: string): (pid: number) => boolean {
  const bits = Buffer.from(b64, 'base64');
  if (bits.length !== PARTITION_BITMAP_BYTES) throw new RangeError(`bitmap of ${bits.length} bytes`);
  return (p) => (bits[p >> 3]! & (0x80 >> (p & 7))) !== 0;
}

/** `replicas` value: `<ns>:<regime>,<count>,<b64>[,<b64>...];...` */
export function replicasValue(namespaces: readonly string[], view: Pick<ClusterView, 'ownership'>): string {
  return namespaces
    .map((ns) => {
      const o = view.ownership(ns);
      return `${ns}:${o.regime},${o.replicas.length},${o.replicas.map(partitionBitmapBase64).join(',')}`;
    })
    .join(';');
}

/** `peers-clear-std` value: `<gen>,<default port>,[[id,tls,[h:p,...]],...]`. */
export function peersValue(generation: number, defaultPort: number, peers: readonly Peer[]): string {
  const fmtHost = (a: PeerAddress): string => {
    const h = a.host.includes(':') ? `[${a.host}]` : a.host;
    return a.port === defaultPort ? h : `${h}:${a.port}`;
  };
  const items = peers.map((p) => `[${p.nodeId},${p.tlsName ?? ''},[${p.addresses.map(fmtHost).join(',')}]]`);
  return `${generation},${defaultPort},[${items.join(',')}]`;
}

function serviceAddress(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '';
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

const kv = (o: Record<string, string | number | boolean>, sep = ';'): string =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(sep);

export interface InfoContext {
  node: StoreNode;
  view: ClusterView;
  /** Address clients reach this node at. */
  host: string;
  port: number;
  /** Service-level settings reported by get-config:context=service. */
  serviceConfig?: () => Record<string, string | number | boolean>;
  /** Dynamic service-level settings (set-config:context=service); false = not settable or invalid. */
  setServiceConfig?: (key: string, value: string) => boolean;
  /** Extra commands (e.g. from node extensions); they win over the built-in ones. */
  extra?: Record<string, InfoHandler>;
  startedAtMs?: number;
  /** Time source for uptime and truncate checks (default: the real clock). */
  clock?: Clock;
}

/** Builds the command table. */
export function infoCommands(ctx: InfoContext): Record<string, InfoHandler> {
  const { node, view } = ctx;
  const clock = ctx.clock ?? systemClock;
  const startedAtMs = ctx.startedAtMs ?? clock.nowMs();
  const nsOf = (name: string | undefined): StoreNamespace | undefined => (name ? node.namespace(name) : undefined);
  const nsParam = (req: InfoRequest): string | undefined => req.params['namespace'] ?? req.params['ns'] ?? req.params['id'] ?? req.positional[0];
  const peers = (req: InfoRequest): string =>
    peersValue(view.peersGeneration(), ctx.port, req.name.startsWith('peers-tls') ? [] : view.peers());

  const setsEntries = (ns: StoreNamespace, only?: string): string =>
    ns
      .sets()
      .filter((s) => only === undefined || s.name === only)
      .map(
        (s) =>
          `ns=${ns.name}:set=${s.name}:objects=${s.objects}:tombstones=${s.tombstones}:data_used_bytes=0:truncate_lut=0:sindexes=0:index_populating=false:truncating=false:default-ttl=0:`,
      )
      .join(';');

  const table: Record<string, InfoHandler> = {
    node: () => node.nodeId,
    build: () => BUILD,
    version: () => `${EDITION} build ${BUILD}`,
    edition: () => EDITION,
    release: () => `edition=${EDITION};version=${BUILD};os=linux;arch=${process.arch};sha=ferry`,
    status: () => 'ok',
    'partition-generation': () => String(view.partitionGeneration()),
    'peers-generation': () => String(view.peersGeneration()),
    'peers-clear-std': peers,
    'peers-clear-alt': peers,
    'peers-tls-std': peers,
    'peers-tls-alt': peers,
    // A wildcard bind address is no address a client can use: answer empty, which clients accept
    // (it skips their load-balancer check) rather than sending them to 0.0.0.0.
    'service-clear-std': () => serviceAddress(ctx.host, ctx.port),
    'service-clear-alt': () => serviceAddress(ctx.host, ctx.port),
    'service-tls-std': () => '',
    'service-tls-alt': () => '',
    services: () => view.peers().map((p) => p.addresses.map((a) => `${a.host}:${a.port}`).join(';')).filter(Boolean).join(';'),
    'services-alternate': () => '',
    'services-alumni': () => '',
    replicas: () => replicasValue(node.namespaceNames(), view),
    'replicas-master': () => node.namespaceNames().map((ns) => `${ns}:${partitionBitmapBase64(view.ownership(ns).replicas[0]!)}`).join(';'),
    'replicas-all': () =>
      node
        .namespaceNames()
        .map((ns) => {
          const o = view.ownership(ns);
          return `${ns}:${o.replicas.length},${o.replicas.map(partitionBitmapBase64).join(',')}`;
        })
        .join(';'),
    partitions: () => String(PARTITION_COUNT),
    'cluster-name': () => view.clusterName(),
    'cluster-stable': (req) => {
      const ns = req.params['namespace'];
      if (ns !== undefined && !node.namespace(ns)) return infoError(4, `unknown namespace ${ns}`);
      const size = req.params['size'];
      if (size !== undefined && !/^\d+$/.test(size)) return infoError(4, `bad size ${size}`);
      const ignore = req.params['ignore-migrations'];
      if (ignore !== undefined && ignore !== 'true' && ignore !== 'false') return infoError(4, `bad ignore-migrations ${ignore}`);
      const key = view.clusterKey();
      if (view.isStable && !view.isStable()) return infoError(7, 'unstable cluster');
      if (size !== undefined && Number(size) !== view.clusterSize()) return infoError(7, 'cluster not specified size');
      if (ignore !== 'true' && (view.migrationsRemaining?.() ?? 0) > 0) return infoError(7, 'unstable cluster');
      // A key change during the checks means membership moved under us.
      return view.clusterKey() === key ? key : infoError(7, 'unstable cluster');
    },
    features: () => FEATURES,
    'user-agent-set': () => 'ok',
    statistics: () =>
      kv({
        uptime: Math.floor((clock.nowMs() - startedAtMs) / 1000),
        ...node.stats(),
        // Cluster facts come from the view (the node alone only knows itself).
        cluster_size: view.clusterSize(),
        cluster_key: view.clusterKey(),
        cluster_name: view.clusterName(),
      }),
    namespaces: () => node.namespaceNames().join(';'),
    namespace: (req) => {
      const ns = nsOf(req.positional[0]);
      if (!ns) return 'type=unknown';
      return kv({
        ns_cluster_size: view.clusterSize(),
        effective_replication_factor: view.ownership(ns.name).replicas.length,
        ...ns.stats(),
        ...ns.getConfig(),
        ...(view.namespaceStats?.(ns.name) ?? {}),
      });
    },
    sets: (req) => {
      const [nsName, setName] = req.positional;
      if (nsName !== undefined && nsName !== '') {
        const ns = nsOf(nsName);
        if (!ns) return 'ns_type=unknown';
        if (setName !== undefined && setName !== '') {
          const s = ns.sets().find((x) => x.name === setName);
          return s ? `objects=${s.objects}:tombstones=${s.tombstones}:data_used_bytes=0:truncate_lut=0:sindexes=0:index_populating=false:truncating=false:default-ttl=0:` : '';
        }
        const e = setsEntries(ns);
        return e ? `${e};` : '';
      }
      const all = node
        .namespaceNames()
        .map((n) => setsEntries(node.namespace(n)!))
        .filter(Boolean)
        .join(';');
      return all ? `${all};` : '';
    },
    bins: (req) => {
      const names = req.positional[0] ? [req.positional[0]] : node.namespaceNames();
      const parts: string[] = [];
      for (const n of names) {
        const ns = nsOf(n);
        if (!ns) return infoError(20, `unknown namespace ${n}`);
        const bins = ns.binNames();
        const body = [`bin_names=${bins.length}`, 'bin_names_quota=65535', ...bins].join(',');
        parts.push(req.positional[0] ? body : `${n}:${body}`);
      }
      return parts.join(';');
    },
    'get-config': (req) => {
      const context = req.params['context'] ?? 'service';
      if (context === 'service') return kv(ctx.serviceConfig?.() ?? { 'cluster-name': view.clusterName(), 'node-id': node.nodeId, port: ctx.port });
      if (context === 'namespace') {
        const name = req.params['id'] ?? req.params['namespace'];
        const ns = nsOf(name);
        if (!ns) return infoError(20, `namespace not found`);
        return kv(ns.getConfig());
      }
      return infoError(4, `unknown context ${context}`);
    },
    'set-config': (req) => {
      const context = req.params['context'];
      if (context === 'service' && ctx.setServiceConfig) {
        const settings = Object.entries(req.params).filter(([k]) => k !== 'context');
        if (settings.length === 0) return infoError(4, 'no setting given');
        for (const [k, v] of settings) if (!ctx.setServiceConfig(k, v)) return infoError(4, `${k} is not a dynamic setting or ${v} is invalid`);
        return 'ok';
      }
      if (context !== 'namespace') return infoError(4, `set-config supports context=namespace${ctx.setServiceConfig ? ' and service' : ''} only`);
      const name = req.params['id'] ?? req.params['namespace'];
      const ns = nsOf(name);
      if (!ns) return infoError(20, 'namespace not found');
      const settings = Object.entries(req.params).filter(([k]) => k !== 'context' && k !== 'id' && k !== 'namespace');
      if (settings.length === 0) return infoError(4, 'no setting given');
      for (const [k, v] of settings) {
        if (!ns.setConfig(k, v)) return infoError(4, `${k} is not a dynamic setting or ${v} is invalid`);
      }
      return 'ok';
    },
    // Features ferry does not have yet answer "unsupported" (16) or "no such index" (201), and
    // their list commands answer empty lists.
    'sindex-create': () => infoError(16, 'secondary indexes are not supported'),
    'sindex-delete': () => infoError(201, 'no such index'),
    'sindex-stat': () => infoError(201, 'no such index'),
    'sindex-list': () => '',
    sindex: () => '',
    'udf-put': () => infoError(16, 'UDFs are not supported'),
    'udf-remove': () => infoError(16, 'UDFs are not supported'),
    'udf-get': () => infoError(16, 'UDFs are not supported'),
    'udf-list': () => '',
    'query-show': () => infoError(2, 'job not found'),
    'scan-show': () => infoError(2, 'job not found'),
    'query-abort': () => infoError(2, 'job not found'),
    'scan-abort': () => infoError(2, 'job not found'),
    truncate: async (req) => truncate(req, true),
    'truncate-namespace': async (req) => truncate(req, false),
  };

  async function truncate(req: InfoRequest, withSet: boolean): Promise<string> {
    const ns = nsOf(nsParam(req));
    if (!ns) return infoError(20, 'namespace not found');
    const set = withSet ? req.params['set'] : undefined;
    let beforeMs: number | undefined;
    const lut = req.params['lut'];
    if (lut !== undefined && lut !== '') {
      if (!/^\d+$/.test(lut)) return infoError(4, 'bad lut');
      beforeMs = Number(BigInt(lut) / NS_PER_MS);
      if (beforeMs > clock.nowMs()) return infoError(4, 'lut is in the future');
    }
    await ns.truncate(set === '' ? undefined : set, beforeMs);
    return 'ok';
  }

  return { ...table, ...(ctx.extra ?? {}) };
}

/** Answers one info request body's commands in order; unknown commands get ERROR:4. */
export async function answerInfo(table: Record<string, InfoHandler>, commands: readonly InfoRequest[]): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for (const req of commands) {
    const h = Object.hasOwn(table, req.name) ? table[req.name] : undefined;
    let value: string;
    if (!h) value = infoError(4, 'unrecognized command');
    else {
      try {
        value = await h(req);
      } catch (err) {
        value = infoError(1, (err as Error).message);
      }
    }
    out.push([req.raw, value]);
  }
  return out;
}

export { parseInfoCommand };
