/**
 * Executes decoded AS_MSG requests against a StoreNode and produces response bytes. No sockets:
 * output goes to a Sink so scans can stream with backpressure.
 */
import type { StoreNamespace, StoreNode } from '../api.js';
import { OpType, PARTITION_COUNT, ResultCode, type RecordResult, type RecordVersion, type ResultCodeId } from '../types.js';
import { decodeBatchField } from './batch.js';
import { partitionOf } from '../digest.js';
import { binsToOps, opsToBins, parseRecordRequest, resultHeader, type RecordRequest } from './command.js';
import {
  FieldType,
  Info1,
  Info2,
  Info3,
  MsgBlockWriter,
  emptyHeader,
  encodeHeaderFrame,
  encodeMsgFrame,
  decodeMsg,
  field,
  type AsMsg,
  type Field,
} from './message.js';
import { compressMessage, PROTO_HEADER_BYTES } from './proto.js';
import { isScanMessage, parseScanRequest, type ScanRequest } from './scan.js';
import type { ClusterView } from './info.js';
import { WireError } from './errors.js';
import { systemClock, systemTimers, sleep, yieldToLoop, type Clock, type Timers } from '../runtime/index.js';

/** Responses larger than this are compressed when the client asks for it. */
export const COMPRESS_THRESHOLD_BYTES = 128;
/** Multi-record responses are cut into proto messages of about this size. */
export const RESPONSE_BLOCK_BYTES = 128 * 1024;
/** A scan yields to other connections after this many partitions or records. */
const SCAN_YIELD_PARTITIONS = 64;
const SCAN_YIELD_RECORDS = 256;
/** Batch rows executed concurrently. */
export const BATCH_CONCURRENCY = 32;

export interface Sink {
  /** Writes bytes; resolves when the peer can take more (backpressure). */
  write(buf: Buffer): Promise<void> | void;
  /** True once the connection is gone (stop producing). */
  readonly closed: boolean;
}

/**
 * Forwards a single-record command to the master of its partition (cluster nodes): `frame` is a
 * complete AS_MSG frame; resolves with the master's complete response frame, or with a result
 * code when the master cannot be reached in time (UNAVAILABLE, TIMEOUT).
 */
export interface CommandProxy {
  /** `namespace`: the command's, so the proxy can find that namespace's working master. */
  forward(pid: number, frame: Buffer, timeoutMs: number, namespace?: string): Promise<Buffer | ResultCodeId>;
}

/** A proxied command waits at most this long when the client sent no transaction TTL. */
export const PROXY_TIMEOUT_MS_DEFAULT = 1000;

export interface HandlerCounters {
  [name: string]: number;
}

export class CommandHandler {
  readonly counters: HandlerCounters = {
    reads: 0,
    writes: 0,
    read_errors: 0,
    write_errors: 0,
    batches: 0,
    batch_rows: 0,
    scans: 0,
    scan_records: 0,
    replicated_writes: 0,
    timeouts: 0,
    server_errors: 0,
    refused: 0,
    not_owner: 0,
    proxied: 0,
    from_proxy: 0,
    proxy_errors: 0,
    replica_reads: 0,
    read_not_found_master: 0,
    read_not_found_replica: 0,
  };

  constructor(
    private readonly node: StoreNode,
    private readonly view: ClusterView,
    private readonly log: (msg: string, err?: unknown) => void = () => {},
    private readonly clock: Clock = systemClock,
    private readonly timers: Timers = systemTimers,
    private readonly proxy?: CommandProxy,
  ) {}

  /** Handles one AS_MSG request (already decompressed). */
  async handle(msg: AsMsg, sink: Sink): Promise<void> {
    const compress = (msg.info1 & Info1.COMPRESS_RESPONSE) !== 0;
    if (msg.info1 & Info1.BATCH) return this.batch(msg, sink, compress);
    if (isScanMessage(msg)) return this.scan(msg, sink, compress);
    const frame = await this.single(msg);
    await sink.write(compress && frame.length > COMPRESS_THRESHOLD_BYTES ? compressMessage(frame) : frame);
  }

  /**
   * A single-record command: returns the complete response message. `fromProxy`: another node
   * forwarded it; it is never forwarded again (one hop), a non-owner answers UNAVAILABLE and the
   * client retries with a fresher map.
   */
  async single(msg: RecordRequest, fromProxy = false): Promise<Buffer> {
    if (fromProxy) this.counters['from_proxy']!++;
    const { resultCode, result, raw } = await this.executeRecord(msg, undefined, fromProxy);
    if (raw) return raw;
    if (!result) return encodeHeaderFrame({ resultCode });
    return encodeMsgFrame(resultHeader(result), [], binsToOps(result.bins));
  }

  /** Forwards a command for a partition this node does not master; the reply comes back as is. */
  private async forward(req: RecordRequest, digest: Buffer | undefined, pid: number, namespace: string): Promise<{ resultCode: ResultCodeId; result?: RecordResult; raw?: Buffer }> {
    this.counters['proxied']!++;
    // The forwarded copy asks for an uncompressed answer (this node compresses for its client).
    const fields = digest && !req.fields.some((f) => f.type === FieldType.DIGEST) ? [...req.fields, field(FieldType.DIGEST, digest)] : req.fields;
    const frame = encodeMsgFrame({ ...req, info1: req.info1 & ~Info1.COMPRESS_RESPONSE }, fields, req.ops);
    const reply = await this.proxy!.forward(pid, frame, req.transactionTtl > 0 ? req.transactionTtl : PROXY_TIMEOUT_MS_DEFAULT, namespace);
    if (typeof reply === 'number') {
      this.counters['proxy_errors']!++;
      return { resultCode: reply };
    }
    let m;
    try {
      m = decodeMsg(reply.subarray(PROTO_HEADER_BYTES));
    } catch (err) {
      this.counters['proxy_errors']!++;
      this.log('undecodable proxy reply', err);
      return { resultCode: ResultCode.SERVER_ERROR };
    }
    const resultCode = m.resultCode as ResultCodeId;
    return { resultCode, raw: reply, result: { resultCode, generation: m.generation, voidTimeS: m.recordTtl, bins: opsToBins(m.ops), lutMs: 0 } };
  }

  private async executeRecord(
    req: RecordRequest,
    digest: Buffer | undefined,
    fromProxy = false,
  ): Promise<{ resultCode: ResultCodeId; result?: RecordResult; raw?: Buffer }> {
    const parsed = parseRecordRequest(req, digest);
    const isWrite = (req.info2 & Info2.WRITE) !== 0;
    if (!parsed.ok) {
      this.counters[isWrite ? 'write_errors' : 'read_errors']!++;
      return { resultCode: parsed.resultCode };
    }
    const { namespace, cmd, replicated } = parsed.value;
    const ns = this.node.namespace(namespace);
    if (!ns) {
      this.counters[isWrite ? 'write_errors' : 'read_errors']!++;
      return { resultCode: ResultCode.NAMESPACE_NOT_FOUND };
    }
    // A node answers only for partitions it holds: writes need the master, reads any replica.
    const owner = this.view.ownership(namespace);
    const pid = partitionOf(cmd.digest);
    if (!(owner.replicas[0]!(pid) || (!isWrite && !replicated && owner.replicas.some((r) => r(pid))))) {
      if (this.proxy && !fromProxy) return this.forward(req, digest, pid, namespace);
      this.counters['not_owner']!++;
      return { resultCode: ResultCode.UNAVAILABLE };
    }
    try {
      if (replicated) {
        this.counters['replicated_writes']!++;
        const r = await ns.applyReplicated(replicated.version, replicated.meta.policy);
        const now = ns.readVersion(replicated.version.digest);
        const live = now && !now.tombstone;
        // Not applied although valid: the local version won (or was the same) — LOST_CONFLICT.
        const resultCode = r.resultCode === ResultCode.OK && !r.applied ? ResultCode.LOST_CONFLICT : r.resultCode;
        return {
          resultCode,
          result: {
            resultCode,
            generation: live ? now.generation : 0,
            voidTimeS: live ? now.voidTimeS : 0,
            bins: [],
            lutMs: now?.lutMs ?? 0,
          },
        };
      }
      this.counters[isWrite ? 'writes' : 'reads']!++;
      const asReplica = !isWrite && !owner.replicas[0]!(pid);
      if (asReplica) this.counters['replica_reads']!++;
      // The namespace answers TIMEOUT itself when a command waited on its key past timeoutMs.
      const result = await ns.execute(cmd);
      if (!isWrite && result.resultCode === ResultCode.NOT_FOUND) this.counters[asReplica ? 'read_not_found_replica' : 'read_not_found_master']!++;
      if (result.resultCode === ResultCode.TIMEOUT) this.counters['timeouts']!++;
      if (result.resultCode !== ResultCode.OK) this.counters[isWrite ? 'write_errors' : 'read_errors']!++;
      return { resultCode: result.resultCode, result };
    } catch (err) {
      this.counters['server_errors']!++;
      this.log('record command failed', err);
      return { resultCode: ResultCode.SERVER_ERROR };
    }
  }

  private async batch(msg: AsMsg, sink: Sink, compress: boolean): Promise<void> {
    this.counters['batches']!++;
    const out = new MsgBlockWriter(RESPONSE_BLOCK_BYTES);
    const finish = async (resultCode: ResultCodeId): Promise<void> => {
      out.add({ ...emptyHeader(), info3: Info3.LAST, resultCode });
      out.flush();
      for (const b of out.take()) await sink.write(compress && b.length > COMPRESS_THRESHOLD_BYTES ? compressMessage(b) : b);
    };
    let fieldData: Buffer | undefined;
    for (const f of msg.fields) {
      if (f.type === FieldType.BATCH_INDEX) fieldData = f.data;
      else if (f.type === FieldType.FILTER || f.type === FieldType.TXN_ID || f.type === FieldType.TXN_DEADLINE) return finish(ResultCode.UNSUPPORTED_FEATURE);
      else if (f.type === FieldType.BATCH_INDEX_WITH_SET) return finish(ResultCode.UNSUPPORTED_FEATURE);
      else return finish(ResultCode.PARAMETER);
    }
    if (!fieldData) return finish(ResultCode.PARAMETER);
    let rows;
    try {
      rows = decodeBatchField(fieldData).rows;
    } catch (err) {
      if (err instanceof WireError) return finish(ResultCode.PARAMETER);
      throw err;
    }
    this.counters['batch_rows']! += rows.length;
    const results = new Array<{ resultCode: ResultCodeId; result?: RecordResult }>(rows.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < rows.length && !sink.closed) {
        const i = next++;
        const row = rows[i]!;
        const req: RecordRequest = {
          info1: row.info1,
          info2: row.info2,
          info3: row.info3,
          info4: row.info4,
          resultCode: 0,
          generation: row.generation,
          recordTtl: row.recordTtl,
          transactionTtl: msg.transactionTtl,
          fields: row.fields,
          ops: row.ops,
        };
        results[i] = await this.executeRecord(req, row.digest);
      }
    };
    await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, rows.length) }, worker));
    if (sink.closed) return;
    rows.forEach((row, i) => {
      const r = results[i]!;
      const h = r.result ? resultHeader(r.result, row.index) : { ...emptyHeader(), resultCode: r.resultCode, transactionTtl: row.index };
      h.resultCode = r.resultCode;
      out.add(h, [], r.result && r.resultCode === ResultCode.OK ? binsToOps(r.result.bins) : []);
    });
    await finish(ResultCode.OK);
  }

  private async scan(msg: AsMsg, sink: Sink, compress: boolean): Promise<void> {
    this.counters['scans']!++;
    const parsed = parseScanRequest(msg);
    const send = async (b: Buffer): Promise<void> => {
      await sink.write(compress && b.length > COMPRESS_THRESHOLD_BYTES ? compressMessage(b) : b);
    };
    if (!parsed.ok) {
      this.counters['refused']!++;
      return send(encodeHeaderFrame({ resultCode: parsed.resultCode }));
    }
    const req = parsed.value;
    const ns = this.node.namespace(req.namespace);
    if (!ns) return send(encodeHeaderFrame({ resultCode: ResultCode.NAMESPACE_NOT_FOUND }));
    const out = new MsgBlockWriter(RESPONSE_BLOCK_BYTES);
    const flushFull = async (): Promise<void> => {
      for (const b of out.take()) await send(b);
    };
    const deadline = msg.transactionTtl > 0 ? this.clock.nowMs() + msg.transactionTtl : Infinity;
    try {
      const finished = await this.streamScan(ns, req, out, flushFull, () => sink.closed, deadline);
      if (!finished && !sink.closed) {
        // transaction_ttl passed: end the stream with TIMEOUT, as the real server does.
        this.counters['timeouts']!++;
        out.add({ ...emptyHeader(), info3: Info3.LAST, resultCode: ResultCode.TIMEOUT });
        out.flush();
        await flushFull();
        return;
      }
    } catch (err) {
      this.counters['server_errors']!++;
      this.log('scan failed', err);
      out.flush();
      await flushFull();
      return send(encodeHeaderFrame({ resultCode: ResultCode.SERVER_ERROR, info3: Info3.LAST }));
    }
    if (sink.closed) return;
    out.add({ ...emptyHeader(), info3: Info3.LAST });
    out.flush();
    await flushFull();
  }

  private async streamScan(
    ns: StoreNamespace,
    req: ScanRequest,
    out: MsgBlockWriter,
    flushFull: () => Promise<void>,
    closed: () => boolean,
    deadlineMs: number,
  ): Promise<boolean> {
    const owns = this.view.ownership(ns.name).replicas[0]!;
    const nsField = field(FieldType.NAMESPACE, ns.name);
    const started = this.clock.nowMs();
    let sent = 0;
    let visited = 0;
    let sentAtYield = 0;
    const opts = { ...(req.set !== undefined ? { set: req.set } : {}), ...(req.bins ? { bins: req.bins } : {}), headerOnly: req.headerOnly };
    for (const part of req.partitions) {
      if (closed()) return true;
      if (this.clock.nowMs() > deadlineMs) return false;
      if (part.pid < 0 || part.pid >= PARTITION_COUNT) continue;
      if (!owns(part.pid)) {
        out.add({ ...emptyHeader(), info3: Info3.PARTITION_DONE, generation: part.pid, resultCode: ResultCode.UNAVAILABLE });
        continue;
      }
      const records: RecordVersion[] = [];
      for (const r of ns.scanPartition(part.pid as never, opts)) records.push(r);
      // Descending digest order; resume strictly after the given digest.
      records.sort((a, b) => Buffer.compare(b.digest, a.digest));
      for (const r of records) {
        if (part.afterDigest && Buffer.compare(r.digest, part.afterDigest) >= 0) continue;
        if (req.set !== undefined && r.set !== req.set) continue;
        const fields: Field[] = [nsField, field(FieldType.DIGEST, r.digest)];
        if (r.set) fields.push(field(FieldType.SET, r.set));
        if (r.key) fields.push(field(FieldType.KEY, Buffer.concat([Buffer.of(r.key.type), r.key.bytes])));
        const bins = req.headerOnly ? [] : req.bins ? r.bins.filter((b) => req.bins!.includes(b.name)) : r.bins;
        out.add(
          { ...emptyHeader(), info1: req.headerOnly ? Info1.NOBINDATA : 0, generation: r.generation & 0xffff, recordTtl: r.voidTimeS },
          fields,
          binsToOps(bins, OpType.READ),
        );
        sent++;
        this.counters['scan_records']!++;
        await flushFull();
        if (req.recordsPerSecond > 0) {
          const dueMs = (sent * 1000) / req.recordsPerSecond - (this.clock.nowMs() - started);
          if (dueMs > 0) {
            out.flush();
            await flushFull();
            await sleep(this.timers, dueMs);
          }
        }
        if (req.maxRecords > 0 && sent >= req.maxRecords) return true;
        if (closed()) return true;
      }
      // Let other connections run between partitions now and then.
      if (++visited % SCAN_YIELD_PARTITIONS === 0 || sent - sentAtYield >= SCAN_YIELD_RECORDS) {
        sentAtYield = sent;
        await yieldToLoop(this.timers);
      }
    }
    return true;
  }
}

