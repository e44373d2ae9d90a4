/**
 * ferry's own Aerospike-protocol client: connect (seed, peers, partition map), info,
 * get/put/remove/operate, batch, partition scans and replicated writes (field 250).
 * Partition-aware: each command goes to the master of its partition from `replicas`.
 */
import { computeDigest, partitionOf, userKeyOf, type KeyInput } from '../digest.js';
import {
  ExistsPolicy,
  GenerationPolicy,
  OpType,
  PARTITION_COUNT,
  ParticleType,
  ResultCode,
  CITRUSLEAF_EPOCH_S,
  type ConflictPolicyId,
  type ExistsPolicyId,
  type GenerationPolicyId,
  type Op,
  type RecordCommand,
  type RecordResult,
  type RecordVersion,
  type UserKey,
} from '../types.js';
import { encodeBatchField, BatchFlag, type BatchRow } from '../wire/batch.js';
import { opsToBins } from '../wire/command.js';
import { AerospikeError } from '../wire/errors.js';
import { parsePartitionBitmap } from '../wire/info.js';
import { encodeInfoRequestFrame, parseInfoError, parseInfoResponse } from '../wire/info-codec.js';
import {
  FieldType,
  Info1,
  Info3,
  decodeMsg,
  decodeMsgs,
  emptyHeader,
  encodeMsgFrame,
  field,
  findField,
  type AsMsg,
  type Field,
} from '../wire/message.js';
import { ProtoType, type Frame } from '../wire/proto.js';
import { ConnectionPool, ClientError, type Connection } from './connection.js';
import { runtimeOf, type Runtime, type TimerHandle } from '../runtime/index.js';
import { commandAttributes, encodeRecordCommand, encodeReplicatedWrite, type EncodedRequest } from './request.js';
import { fromWireValue, toWireValue, type BinValue } from './values.js';


export interface ClientOptions {
  hosts: Array<{ host: string; port: number }>;
  /** Per-node connection cap. */
  maxConnsPerNode?: number;
  timeoutMs?: number;
  connectTimeoutMs?: number;
  /** Tend interval; 0 disables tending (the partition map is read once). */
  tendIntervalMs?: number;
  /** Clock, timers, PRNG for tending, task ids and TTLs (default: the real ones). */
  runtime?: Partial<Runtime>;
}

export interface KeySpec {
  namespace: string;
  set?: string;
  /** The user key; the digest is computed from set + key. */
  key?: KeyInput;
  /** Digest, when the user key is unknown. */
  digest?: Buffer;
}

export interface WritePolicy {
  /** Seconds; -1 never expire; -2 keep; 0 namespace default. */
  ttl?: number;
  exists?: ExistsPolicyId;
  generationPolicy?: GenerationPolicyId;
  generation?: number;
  /** Store the user key with the record. */
  sendKey?: boolean;
  durableDelete?: boolean;
  timeoutMs?: number;
}

export interface ClientRecord {
  bins: Record<string, BinValue>;
  generation: number;
  /** Void time, seconds since the Aerospike epoch; 0 = never expires. */
  voidTimeS: number;
  /** Seconds left, -1 when the record never expires. */
  ttl: number;
}

export interface ScannedRecord extends ClientRecord {
  digest: Buffer;
  set: string;
  key?: BinValue;
}

export type BatchItem =
  | { kind: 'read'; key: KeySpec; bins?: string[]; headerOnly?: boolean }
  | { kind: 'write'; key: KeySpec; bins: Record<string, BinValue>; policy?: WritePolicy }
  | { kind: 'remove'; key: KeySpec; policy?: WritePolicy }
  | { kind: 'operate'; key: KeySpec; ops: Op[]; policy?: WritePolicy };

export interface BatchResult {
  resultCode: number;
  record?: ClientRecord;
}

export interface ScanOptions {
  set?: string;
  /** Partitions to scan (default: all). */
  partitions?: number[];
  bins?: string[];
  headerOnly?: boolean;
  maxRecords?: number;
  recordsPerSecond?: number;
  timeoutMs?: number;
}

/** Operation builders for operate(). */
export const ops = {
  read: (bin: string): Op => ({ op: OpType.READ, bin, value: nullValue() }),
  write: (bin: string, v: BinValue): Op => ({ op: OpType.WRITE, bin, value: toWireValue(v) }),
  incr: (bin: string, by: number | bigint): Op => ({ op: OpType.INCR, bin, value: toWireValue(by) }),
  append: (bin: string, v: string | Buffer): Op => ({ op: OpType.APPEND, bin, value: toWireValue(v) }),
  prepend: (bin: string, v: string | Buffer): Op => ({ op: OpType.PREPEND, bin, value: toWireValue(v) }),
  touch: (): Op => ({ op: OpType.TOUCH, bin: '', value: nullValue() }),
  delete: (): Op => ({ op: OpType.DELETE, bin: '', value: nullValue() }),
};

function nullValue(): { type: typeof ParticleType.NULL; bytes: Buffer } {
  return { type: ParticleType.NULL, bytes: Buffer.alloc(0) };
}

interface ClusterNode {
  nodeId: string;
  host: string;
  port: number;
  pool: ConnectionPool;
}

const DEFAULT_TIMEOUT_MS = 5_000;
/** Extra wait beyond a command's server-side timeout, so the server's TIMEOUT answer arrives first. */
const SERVER_ANSWER_GRACE_MS = 1_000;
/** Scanned records buffered before the client stops reading from the socket. */
const SCAN_QUEUE_RECORDS_MAX = 10_000;
/** A scan without a timeout fails when no frame arrives for this long. */
const SCAN_IDLE_TIMEOUT_MS = 60_000;
const DEFAULT_CONNS_PER_NODE = 64;
/** Tend rounds in a row a node may fail before the client drops it (its claims stop routing commands). */
export const NODE_TEND_FAILURES_MAX = 3;

export class FerryClient {
  private nodes = new Map<string, ClusterNode>();
  /** namespace -> 4096 master node ids. */
  private partitionMap = new Map<string, Array<string | undefined>>();
  /** namespace -> node id -> the partitions that node last said it masters (1 = master). */
  private masterClaims = new Map<string, Map<string, Uint8Array>>();
  private partitionGeneration = new Map<string, string>();
  private peersGeneration = new Map<string, string>();
  /** node id -> the peers that node listed last (a dropped node that a live one still lists is tried again). */
  private peersOf = new Map<string, Peer[]>();
  /** node id -> tend rounds it failed in a row. */
  private tendFailures = new Map<string, number>();
  private tendTimer: TimerHandle | undefined;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly rt: Runtime;

  private constructor(private readonly opts: ClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.rt = runtimeOf(opts.runtime);
  }

  static async connect(opts: ClientOptions): Promise<FerryClient> {
    const c = new FerryClient(opts);
    let lastErr: unknown;
    for (const seed of opts.hosts) {
      try {
        await c.addNode(seed.host, seed.port);
        break;
      } catch (err) {
        lastErr = err;
      }
    }
    if (c.nodes.size === 0) throw lastErr instanceof Error ? lastErr : new AerospikeError(ClientError.CONNECTION, 'no seed reachable');
    await c.tend();
    const interval = opts.tendIntervalMs ?? 1000;
    if (interval > 0) {
      c.tendTimer = c.rt.timers.setInterval(() => void c.tend().catch(() => {}), interval);
      c.tendTimer.unref();
    }
    return c;
  }

  /** Node ids currently known. */
  nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  close(): void {
    this.closed = true;
    if (this.tendTimer) this.rt.timers.clearInterval(this.tendTimer);
    for (const n of this.nodes.values()) n.pool.close();
    this.nodes.clear();
  }

  // ---- info ----

  /** Sends info commands to one node (default: any) and returns command -> value. */
  async info(commands: string[], nodeId?: string): Promise<Map<string, string>> {
    const node = nodeId ? this.nodes.get(nodeId) : this.anyNode();
    if (!node) throw new AerospikeError(-8, `node ${nodeId ?? ''} not found`);
    return this.infoOn(node.pool, commands);
  }

  /** Sends one info command and returns its value; `ERROR:` values throw AerospikeError. */
  async infoValue(command: string, nodeId?: string): Promise<string> {
    const v = (await this.info([command], nodeId)).get(command) ?? '';
    const e = parseInfoError(v);
    if (e) throw new AerospikeError(e.code, e.message);
    return v;
  }

  private async infoOn(pool: ConnectionPool, commands: string[]): Promise<Map<string, string>> {
    let out = new Map<string, string>();
    await pool.use((c) =>
      c.exchange(
        encodeInfoRequestFrame(commands),
        (f) => {
          if (f.type !== ProtoType.INFO) throw new AerospikeError(ClientError.CLIENT, `info answered with type ${f.type}`);
          out = parseInfoResponse(f.body);
          return true;
        },
        this.timeoutMs,
      ),
    );
    return out;
  }

  // ---- cluster ----

  private async addNode(host: string, port: number, expectId?: string): Promise<ClusterNode> {
    const pool = new ConnectionPool(host, port, this.opts.maxConnsPerNode ?? DEFAULT_CONNS_PER_NODE, this.opts.connectTimeoutMs ?? this.timeoutMs);
    let info: Map<string, string>;
    try {
      info = await this.infoOn(pool, ['node', 'partition-generation', 'build']);
    } catch (err) {
      pool.close();
      throw err;
    }
    const nodeId = info.get('node') ?? '';
    if (!nodeId || (expectId && nodeId !== expectId) || info.get('partition-generation') === '-1') {
      pool.close();
      throw new AerospikeError(ClientError.CLIENT, `node at ${host}:${port} is not valid (${nodeId})`);
    }
    const existing = this.nodes.get(nodeId);
    if (existing) {
      pool.close();
      return existing;
    }
    const node = { nodeId, host, port, pool };
    this.nodes.set(nodeId, node);
    return node;
  }

  /** One tend round: peers and partition maps of every node. */
  async tend(): Promise<void> {
    if (this.closed) return;
    // A peer a live node lists that the client lost (it was unreachable for a while) is tried again.
    for (const peers of this.peersOf.values()) for (const p of peers) if (!this.nodes.has(p.nodeId)) await this.addPeer(p);
    // Peers found in this round are tended in the same round.
    const tended = new Set<string>();
    for (;;) {
      const next = [...this.nodes.values()].filter((n) => !tended.has(n.nodeId));
      if (next.length === 0) break;
      for (const node of next) {
        tended.add(node.nodeId);
        await this.tendNode(node);
      }
    }
  }

  /** Adds a peer by the first of its addresses that answers as that node; false when none did. */
  private async addPeer(p: Peer): Promise<boolean> {
    for (const a of p.addresses) {
      try {
        await this.addNode(a.host, a.port, p.nodeId);
        return true;
      } catch {
        /* try the next address */
      }
    }
    return false;
  }

  /**
   * A node that failed NODE_TEND_FAILURES_MAX tend rounds in a row is dropped: its pool closed, its
   * master claims forgotten, so its partitions go to another node's standing claim (or to no node
   * until one claims them) instead of to a node that is gone. The last node is kept: it is the
   * client's only way back into the cluster.
   */
  private tendFailed(node: ClusterNode): void {
    const failures = (this.tendFailures.get(node.nodeId) ?? 0) + 1;
    this.tendFailures.set(node.nodeId, failures);
    if (failures < NODE_TEND_FAILURES_MAX || this.nodes.size <= 1) return;
    this.nodes.delete(node.nodeId);
    node.pool.close();
    this.tendFailures.delete(node.nodeId);
    this.peersGeneration.delete(node.nodeId);
    this.partitionGeneration.delete(node.nodeId);
    this.peersOf.delete(node.nodeId);
    for (const [ns, claims] of this.masterClaims) {
      claims.delete(node.nodeId);
      const map = this.partitionMap.get(ns);
      if (!map) continue;
      for (let p = 0; p < PARTITION_COUNT; p++) if (map[p] === node.nodeId) map[p] = this.otherClaimant(claims, p, node.nodeId);
    }
  }

  private async tendNode(node: ClusterNode): Promise<void> {
    let info: Map<string, string>;
    try {
      info = await this.infoOn(node.pool, ['node', 'peers-generation', 'partition-generation']);
    } catch {
      this.tendFailed(node);
      return;
    }
    this.tendFailures.delete(node.nodeId);
    if (info.get('peers-generation') !== this.peersGeneration.get(node.nodeId)) {
      const peers = parsePeers((await this.infoOn(node.pool, ['peers-clear-std'])).get('peers-clear-std') ?? '');
      this.peersOf.set(node.nodeId, peers);
      for (const p of peers) if (!this.nodes.has(p.nodeId)) await this.addPeer(p);
      this.peersGeneration.set(node.nodeId, info.get('peers-generation') ?? '');
    }
    if (info.get('partition-generation') !== this.partitionGeneration.get(node.nodeId)) {
      const r = await this.infoOn(node.pool, ['partition-generation', 'replicas']);
      this.applyReplicas(node.nodeId, r.get('replicas') ?? '');
      this.partitionGeneration.set(node.nodeId, r.get('partition-generation') ?? '');
    }
  }

  /**
   * Records which partitions `nodeId` says it masters and recomputes those partitions' entries.
   * Each node's latest claim is kept: when a node gives a partition up, another node's standing
   * claim takes over at once. (A restarted node that briefly claimed everything while alone,
   * then gave up what a peer masters, used to leave those partitions with no node until the
   * peer's partition generation next changed.)
   */
  private applyReplicas(nodeId: string, value: string): void {
    for (const entry of value.split(';')) {
      if (!entry) continue;
      const colon = entry.indexOf(':');
      const ns = entry.slice(0, colon);
      const parts = entry.slice(colon + 1).split(',');
      const b64 = parts[2];
      if (!b64) continue;
      const owns = parsePartitionBitmap(b64);
      let claims = this.masterClaims.get(ns);
      if (!claims) this.masterClaims.set(ns, (claims = new Map()));
      const mine = new Uint8Array(PARTITION_COUNT);
      for (let p = 0; p < PARTITION_COUNT; p++) mine[p] = owns(p) ? 1 : 0;
      claims.set(nodeId, mine);
      let map = this.partitionMap.get(ns);
      if (!map) this.partitionMap.set(ns, (map = new Array<string | undefined>(PARTITION_COUNT).fill(undefined)));
      for (let p = 0; p < PARTITION_COUNT; p++) {
        if (mine[p]) map[p] = nodeId;
        else if (map[p] === nodeId || map[p] === undefined) map[p] = this.otherClaimant(claims, p, nodeId);
      }
    }
  }

  /** A node other than `except` whose latest report claims partition `p`. */
  private otherClaimant(claims: Map<string, Uint8Array>, p: number, except: string): string | undefined {
    for (const [id, owned] of claims) if (id !== except && owned[p] && this.nodes.has(id)) return id;
    return undefined;
  }

  private anyNode(): ClusterNode | undefined {
    return this.nodes.values().next().value;
  }

  /** The node id the client's map says masters pid of namespace (undefined before the map has it). */
  masterOf(namespace: string, pid: number): string | undefined {
    return this.partitionMap.get(namespace)?.[pid];
  }

  private nodeFor(namespace: string, pid: number): ClusterNode {
    const map = this.partitionMap.get(namespace);
    if (!map) throw new AerospikeError(ResultCode.NAMESPACE_NOT_FOUND, `namespace ${namespace} not found`);
    const id = map[pid];
    const node = id ? this.nodes.get(id) : undefined;
    if (!node) throw new AerospikeError(-8, `no node for partition ${pid}`);
    return node;
  }

  // ---- single record ----

  /** Sends a store-shaped command and returns the store-shaped result (raw values). */
  async execute(cmd: RecordCommand): Promise<RecordResult> {
    const node = this.nodeFor(cmd.namespace, partitionOf(cmd.digest));
    return this.send(node, encodeRecordCommand({ ...cmd, timeoutMs: cmd.timeoutMs ?? this.timeoutMs }), cmd.timeoutMs);
  }

  private async send(node: ClusterNode, req: EncodedRequest, timeoutMs?: number): Promise<RecordResult> {
    let msg: AsMsg | undefined;
    await node.pool.use((c) =>
      c.exchange(
        encodeMsgFrame(req.header, req.fields, req.ops),
        (f: Frame) => {
          if (f.type !== ProtoType.AS_MSG) throw new AerospikeError(ClientError.CLIENT, `answered with type ${f.type}`);
          msg = decodeMsg(f.body);
          return true;
        },
        (timeoutMs ?? this.timeoutMs) + SERVER_ANSWER_GRACE_MS,
      ),
    );
    const m = msg!;
    const keyField = findField(m.fields, FieldType.KEY);
    const result: RecordResult = {
      resultCode: m.resultCode as RecordResult['resultCode'],
      generation: m.generation,
      voidTimeS: m.recordTtl,
      bins: opsToBins(m.ops).map((b) => ({ ...b, bytes: Buffer.from(b.bytes) })),
      lutMs: 0,
    };
    if (keyField && keyField.data.length > 0) result.key = { type: keyField.data[0]! as UserKey['type'], bytes: Buffer.from(keyField.data.subarray(1)) };
    return result;
  }

  private command(k: KeySpec, ops: Op[], policy: WritePolicy = {}, extra: Partial<RecordCommand> = {}): RecordCommand {
    const set = k.set ?? '';
    const digest = k.digest ?? (k.key !== undefined ? computeDigest(set, k.key) : undefined);
    if (!digest) throw new AerospikeError(ClientError.CLIENT, 'key or digest required');
    const cmd: RecordCommand = { namespace: k.namespace, set, digest, ops, ...extra };
    if (policy.sendKey && k.key !== undefined) cmd.key = userKeyOf(k.key);
    if (policy.ttl !== undefined) cmd.ttlS = policy.ttl;
    if (policy.exists !== undefined) cmd.exists = policy.exists;
    if (policy.generationPolicy !== undefined) {
      cmd.generationPolicy = policy.generationPolicy;
      cmd.generation = policy.generation ?? 0;
    }
    if (policy.durableDelete) cmd.durableDelete = true;
    cmd.timeoutMs = policy.timeoutMs ?? this.timeoutMs;
    return cmd;
  }

  private check(r: RecordResult): RecordResult {
    if (r.resultCode !== ResultCode.OK) throw new AerospikeError(r.resultCode, `server result ${r.resultCode}`);
    return r;
  }

  /** Reads a record (all bins, or the given ones); null when not found. */
  async get(k: KeySpec, bins?: string[], timeoutMs?: number): Promise<ClientRecord | null> {
    const r = await this.execute(
      this.command(k, (bins ?? []).map(ops.read), { ...(timeoutMs ? { timeoutMs } : {}) }, bins ? {} : { readAll: true }),
    );
    if (r.resultCode === ResultCode.NOT_FOUND) return null;
    return toRecord(this.check(r), this.rt.clock.nowMs());
  }

  async exists(k: KeySpec): Promise<boolean> {
    const r = await this.execute(this.command(k, [], {}, { headerOnly: true }));
    if (r.resultCode === ResultCode.NOT_FOUND) return false;
    this.check(r);
    return true;
  }

  async put(k: KeySpec, bins: Record<string, BinValue>, policy: WritePolicy = {}): Promise<{ generation: number; voidTimeS: number }> {
    const writeOps = Object.entries(bins).map(([name, v]) => ops.write(name, v));
    const r = this.check(await this.execute(this.command(k, writeOps, policy)));
    return { generation: r.generation, voidTimeS: r.voidTimeS };
  }

  /** Removes a record; false when it did not exist. */
  async remove(k: KeySpec, policy: WritePolicy = {}): Promise<boolean> {
    const r = await this.execute(this.command(k, [ops.delete()], policy));
    if (r.resultCode === ResultCode.NOT_FOUND) return false;
    this.check(r);
    return true;
  }

  async operate(k: KeySpec, operations: Op[], policy: WritePolicy = {}): Promise<ClientRecord> {
    return toRecord(this.check(await this.execute(this.command(k, operations, policy))), this.rt.clock.nowMs());
  }

  /** Applies a replicated version (ferry field 250). Result 0 applied, 28 lost the conflict. */
  async applyReplicated(v: RecordVersion, policy: ConflictPolicyId, timeoutMs?: number): Promise<{ resultCode: number; generation: number; voidTimeS: number }> {
    const node = this.nodeFor(v.namespace, partitionOf(v.digest));
    const r = await this.send(node, encodeReplicatedWrite(v, policy, timeoutMs ?? this.timeoutMs), timeoutMs);
    return { resultCode: r.resultCode, generation: r.generation, voidTimeS: r.voidTimeS };
  }

  // ---- batch ----

  async batch(items: BatchItem[], timeoutMs?: number): Promise<BatchResult[]> {
    const results = new Array<BatchResult>(items.length);
    const byNode = new Map<ClusterNode, BatchRow[]>();
    items.forEach((item, index) => {
      const cmd = this.batchCommand(item);
      const node = this.nodeFor(cmd.namespace, partitionOf(cmd.digest));
      const { header, ops: wireOps } = commandAttributes(cmd);
      const fields: Field[] = [field(FieldType.NAMESPACE, cmd.namespace), field(FieldType.SET, cmd.set)];
      if (cmd.key) fields.push(field(FieldType.KEY, Buffer.concat([Buffer.of(cmd.key.type), cmd.key.bytes])));
      const row: BatchRow = {
        index,
        digest: cmd.digest,
        repeat: false,
        info1: header.info1,
        info2: header.info2,
        info3: header.info3,
        info4: 0,
        generation: header.generation,
        recordTtl: header.recordTtl,
        fields,
        ops: wireOps,
      };
      let rows = byNode.get(node);
      if (!rows) byNode.set(node, (rows = []));
      rows.push(row);
    });
    const t = timeoutMs ?? this.timeoutMs;
    await Promise.all(
      [...byNode.entries()].map(async ([node, rows]) => {
        const payload = encodeBatchField({ flags: BatchFlag.ALLOW_INLINE | BatchFlag.RESPOND_ALL_KEYS | BatchFlag.NEW_PROTOCOL, rows });
        const frame = encodeMsgFrame({ ...emptyHeader(), info1: Info1.BATCH, transactionTtl: t }, [field(FieldType.BATCH_INDEX, payload)]);
        let failure: AerospikeError | undefined;
        await node.pool.use((c) =>
          c.exchange(
            frame,
            (f) => {
              for (const m of decodeMsgs(f.body)) {
                if (m.info3 & Info3.LAST) {
                  if (m.resultCode !== 0) failure = new AerospikeError(m.resultCode, `batch failed with ${m.resultCode}`);
                  return true;
                }
                const i = m.transactionTtl;
                if (i >= items.length) throw new AerospikeError(ClientError.CLIENT, `batch index ${i} out of range`);
                results[i] = {
                  resultCode: m.resultCode,
                  ...(m.resultCode === 0
                    ? { record: toRecord({ generation: m.generation, voidTimeS: m.recordTtl, bins: opsToBins(m.ops) }, this.rt.clock.nowMs()) }
                    : {}),
                };
              }
              return false;
            },
            t + SERVER_ANSWER_GRACE_MS,
          ),
        );
        if (failure) throw failure;
      }),
    );
    for (let i = 0; i < results.length; i++) results[i] ??= { resultCode: ResultCode.TIMEOUT };
    return results;
  }

  private batchCommand(item: BatchItem): RecordCommand {
    switch (item.kind) {
      case 'read':
        return this.command(item.key, (item.bins ?? []).map(ops.read), {}, item.headerOnly ? { headerOnly: true } : item.bins ? {} : { readAll: true });
      case 'write':
        return this.command(item.key, Object.entries(item.bins).map(([n, v]) => ops.write(n, v)), item.policy, { respondAllOps: true });
      case 'remove':
        return this.command(item.key, [ops.delete()], item.policy);
      case 'operate':
        return this.command(item.key, item.ops, item.policy);
    }
  }

  // ---- scan ----

  /** Scans partitions (default all), yielding records as they stream in. */
  async *scan(namespace: string, o: ScanOptions = {}): AsyncGenerator<ScannedRecord> {
    const pids = o.partitions ?? Array.from({ length: PARTITION_COUNT }, (_, i) => i);
    const byNode = new Map<ClusterNode, number[]>();
    for (const pid of pids) {
      const node = this.nodeFor(namespace, pid);
      let l = byNode.get(node);
      if (!l) byNode.set(node, (l = []));
      l.push(pid);
    }
    let remaining = o.maxRecords ?? 0;
    for (const [node, nodePids] of byNode) {
      const fields: Field[] = [field(FieldType.NAMESPACE, namespace)];
      if (o.set) fields.push(field(FieldType.SET, o.set));
      if (o.recordsPerSecond) {
        const b = Buffer.alloc(4);
        b.writeUInt32BE(o.recordsPerSecond);
        fields.push(field(FieldType.RPS, b));
      }
      const taskId = Buffer.alloc(8);
      taskId.writeBigUInt64BE(BigInt(this.rt.random.u32()) * 0x10000n + BigInt(this.rt.random.int(0x10000)));
      fields.push(field(FieldType.TASK_ID, taskId));
      const pidBytes = Buffer.alloc(nodePids.length * 2);
      nodePids.forEach((p, i) => pidBytes.writeUInt16LE(p, i * 2));
      fields.push(field(FieldType.PID_ARRAY, pidBytes));
      if (remaining > 0) {
        const b = Buffer.alloc(8);
        b.writeBigUInt64BE(BigInt(remaining));
        fields.push(field(FieldType.MAX_RECORDS, b));
      }
      const info1 = Info1.READ | (o.headerOnly ? Info1.NOBINDATA : 0) | (o.bins ? 0 : Info1.GET_ALL);
      const frame = encodeMsgFrame(
        { ...emptyHeader(), info1, info3: Info3.PARTITION_DONE, recordTtl: 0xffffffff, transactionTtl: o.timeoutMs ?? 0 },
        fields,
        (o.bins ?? []).map((b) => ({ op: OpType.READ, particleType: 0, flags: 0, name: Buffer.from(b), value: Buffer.alloc(0) })),
      );
      // Records are buffered per proto message and handed out between messages.
      const queue: ScannedRecord[] = [];
      let done = false;
      let failure: Error | undefined;
      let wake: (() => void) | undefined;
      let conn: Connection | undefined;
      let paused = false;
      const exchange = node.pool
        .use((c) => {
          conn = c;
          return c.exchange(
            frame,
            (f) => {
              for (const m of decodeMsgs(f.body)) {
                if (m.info3 & Info3.LAST) {
                  if (m.resultCode !== 0) failure = new AerospikeError(m.resultCode, `scan failed with ${m.resultCode}`);
                  return true;
                }
                if (m.info3 & Info3.PARTITION_DONE) continue;
                if (m.resultCode !== 0) {
                  if (m.resultCode !== ResultCode.NOT_FOUND) failure = new AerospikeError(m.resultCode, `scan failed with ${m.resultCode}`);
                  return true;
                }
                queue.push(toScanned(m, this.rt.clock.nowMs()));
              }
              if (queue.length >= SCAN_QUEUE_RECORDS_MAX && !paused) {
                paused = true;
                c.pauseReading();
              }
              wake?.();
              return false;
            },
            // Idle limit between frames; the server enforces timeoutMs itself (TIMEOUT in LAST).
            (o.timeoutMs ?? 0) > 0 ? o.timeoutMs! + SERVER_ANSWER_GRACE_MS : SCAN_IDLE_TIMEOUT_MS,
          );
        })
        .catch((err: Error) => {
          failure ??= err;
        })
        .finally(() => {
          done = true;
          wake?.();
        });
      try {
        for (;;) {
          while (queue.length > 0) {
            const r = queue.shift()!;
            if (paused && queue.length < SCAN_QUEUE_RECORDS_MAX / 2) {
              paused = false;
              conn?.resumeReading();
            }
            yield r;
            if (o.maxRecords && --remaining <= 0) {
              if (paused) conn?.resumeReading();
              await exchange;
              return;
            }
          }
          if (done) break;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
        await exchange;
        if (failure) throw failure;
      } finally {
        // The consumer stopped early: the rest of the stream is unwanted, so drop the connection.
        if (!done) conn?.close();
      }
    }
  }
}

function toRecord(r: Pick<RecordResult, 'bins' | 'generation' | 'voidTimeS'>, nowMs: number): ClientRecord {
  const bins: Record<string, BinValue> = {};
  for (const b of r.bins) bins[b.name] = fromWireValue(b);
  return { bins, generation: r.generation, voidTimeS: r.voidTimeS, ttl: ttlOf(r.voidTimeS, nowMs) };
}

function toScanned(m: AsMsg, nowMs: number): ScannedRecord {
  const rec = toRecord({ bins: opsToBins(m.ops), generation: m.generation, voidTimeS: m.recordTtl }, nowMs);
  const digest = findField(m.fields, FieldType.DIGEST)?.data;
  if (!digest) throw new AerospikeError(ClientError.CLIENT, 'scan record without digest');
  const set = findField(m.fields, FieldType.SET)?.data.toString('utf8') ?? '';
  const keyField = findField(m.fields, FieldType.KEY);
  const out: ScannedRecord = { ...rec, digest: Buffer.from(digest), set };
  if (keyField && keyField.data.length > 0) out.key = fromWireValue({ type: keyField.data[0]! as UserKey['type'], bytes: keyField.data.subarray(1) });
  return out;
}

function ttlOf(voidTimeS: number, nowMs: number): number {
  if (voidTimeS === 0) return -1;
  return Math.max(voidTimeS + CITRUSLEAF_EPOCH_S - Math.floor(nowMs / 1000), 1);
}

/** Parses a peers-clear-std value. */
/** One entry of a node's peers list: a node id and its service addresses. */
export interface Peer {
  nodeId: string;
  addresses: Array<{ host: string; port: number }>;
}

export function parsePeers(value: string): Peer[] {
  const m = /^(\d+),(\d*),\[(.*)\]$/.exec(value);
  if (!m) return [];
  const defaultPort = m[2] ? Number(m[2]) : 3000;
  const out: Array<{ nodeId: string; addresses: Array<{ host: string; port: number }> }> = [];
  const re = /\[([^,\[\]]+),([^,\[\]]*),\[((?:\[[^\]]*\](?::\d+)?|[^\]])*)\]\]/g;
  let pm: RegExpExecArray | null;
  while ((pm = re.exec(m[3]!))) {
    const addrs = pm[3]!.split(',').filter(Boolean).map((a) => {
      const v6 = /^\[(.*)\](?::(\d+))?$/.exec(a);
      if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : defaultPort };
      const [h, p] = a.split(':');
      return { host: h!, port: p ? Number(p) : defaultPort };
    });
    out.push({ nodeId: pm[1]!, addresses: addrs });
  }
  return out;
}

export { ExistsPolicy, GenerationPolicy };
