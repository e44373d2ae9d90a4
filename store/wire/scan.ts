/**
 * Scan/query request parsing (docs section 10). Pure: decides what a scan asks for, or which
 * result code refuses it.
 */
import { DIGEST_BYTES, NAMESPACE_NAME_BYTES_MAX, OpType, PARTITION_COUNT, ResultCode, SET_NAME_BYTES_MAX, type ResultCodeId } from '../types.js';
import { partitionOf } from '../digest.js';
import { FieldType, Info1, Info2, Info3, KNOWN_FIELD_TYPES, type AsMsg } from './message.js';
import type { Parsed } from './command.js';

export interface ScanPartitionRequest {
  pid: number;
  /** Resume after this digest (records with digest strictly below it, in descending order). */
  afterDigest?: Buffer;
}

export interface ScanRequest {
  namespace: string;
  /** undefined = all sets. */
  set?: string;
  partitions: ScanPartitionRequest[];
  /** 0 = no limit. */
  maxRecords: number;
  /** 0 = unthrottled. */
  recordsPerSecond: number;
  /** undefined = all bins. */
  bins?: string[];
  headerOnly: boolean;
  taskId?: bigint;
}

const fail = (resultCode: ResultCodeId, message: string): { ok: false; resultCode: ResultCodeId; message: string } => ({ ok: false, resultCode, message });

const QUERY_INDEX_FIELDS: ReadonlySet<number> = new Set([
  FieldType.INDEX_NAME,
  FieldType.INDEX_RANGE,
  FieldType.INDEX_CONTEXT,
  FieldType.INDEX_EXPRESSION,
  FieldType.INDEX_TYPE,
]);
const UNSUPPORTED_SCAN_FIELDS: ReadonlySet<number> = new Set([
  FieldType.UDF_PACKAGE_NAME,
  FieldType.UDF_FUNCTION,
  FieldType.UDF_ARGLIST,
  FieldType.UDF_OP,
  FieldType.FILTER,
  FieldType.TXN_ID,
  FieldType.TXN_DEADLINE,
]);
const SCAN_FIELDS: ReadonlySet<number> = new Set([
  FieldType.NAMESPACE,
  FieldType.SET,
  FieldType.TASK_ID,
  FieldType.SOCKET_TIMEOUT,
  FieldType.RPS,
  FieldType.PID_ARRAY,
  FieldType.DIGEST_ARRAY,
  FieldType.MAX_RECORDS,
  FieldType.BVAL_ARRAY,
  FieldType.QUERY_BINS,
]);

/** Fields only scans and queries carry. */
const SCAN_MARKER_FIELDS: ReadonlySet<number> = new Set([
  FieldType.TASK_ID,
  FieldType.PID_ARRAY,
  FieldType.DIGEST_ARRAY,
  FieldType.MAX_RECORDS,
  FieldType.RPS,
  FieldType.SOCKET_TIMEOUT,
  FieldType.UDF_OP,
  ...QUERY_INDEX_FIELDS,
]);

/**
 * True when an AS_MSG (not a batch) is a scan or query: no digest, and a scan marker (info3
 * PARTITION_DONE or a scan-only field). Anything else goes the single-record way (and a missing
 * digest is a PARAMETER error there).
 */
export function isScanMessage(msg: AsMsg): boolean {
  if (msg.info1 & Info1.BATCH) return false;
  let marker = (msg.info3 & Info3.PARTITION_DONE) !== 0;
  for (const f of msg.fields) {
    if (f.type === FieldType.DIGEST) return false;
    if (SCAN_MARKER_FIELDS.has(f.type)) marker = true;
  }
  return marker;
}

export function parseScanRequest(msg: AsMsg): Parsed<ScanRequest> {
  let namespace: string | undefined;
  let set: string | undefined;
  let pids: number[] | undefined;
  let digests: Buffer[] | undefined;
  let maxRecords = 0;
  let recordsPerSecond = 0;
  let taskId: bigint | undefined;
  let queryBins: string[] | undefined;
  for (const f of msg.fields) {
    if (QUERY_INDEX_FIELDS.has(f.type)) return fail(ResultCode.SINDEX_NOT_FOUND, 'secondary indexes are not supported');
    if (UNSUPPORTED_SCAN_FIELDS.has(f.type)) return fail(ResultCode.UNSUPPORTED_FEATURE, `field ${f.type} is not supported in scans`);
    if (!SCAN_FIELDS.has(f.type)) {
      return fail(ResultCode.PARAMETER, KNOWN_FIELD_TYPES.has(f.type) ? `field ${f.type} not allowed in a scan` : `unknown field type ${f.type}`);
    }
    switch (f.type) {
      case FieldType.NAMESPACE:
        if (f.data.length === 0 || f.data.length > NAMESPACE_NAME_BYTES_MAX) return fail(ResultCode.NAMESPACE_NOT_FOUND, 'bad namespace');
        namespace = f.data.toString('utf8');
        break;
      case FieldType.SET:
        if (f.data.length > SET_NAME_BYTES_MAX) return fail(ResultCode.PARAMETER, 'set name too long');
        set = f.data.length ? f.data.toString('utf8') : undefined;
        break;
      case FieldType.TASK_ID:
        if (f.data.length !== 8) return fail(ResultCode.PARAMETER, 'task id must be 8 bytes');
        taskId = f.data.readBigUInt64BE(0);
        break;
      case FieldType.RPS:
        if (f.data.length !== 4) return fail(ResultCode.PARAMETER, 'rps must be 4 bytes');
        recordsPerSecond = f.data.readUInt32BE(0);
        break;
      case FieldType.SOCKET_TIMEOUT:
        if (f.data.length !== 4) return fail(ResultCode.PARAMETER, 'socket timeout must be 4 bytes');
        break;
      case FieldType.MAX_RECORDS: {
        if (f.data.length !== 8) return fail(ResultCode.PARAMETER, 'max records must be 8 bytes');
        const n = f.data.readBigUInt64BE(0);
        maxRecords = n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
        break;
      }
      case FieldType.PID_ARRAY: {
        if (f.data.length % 2 !== 0) return fail(ResultCode.PARAMETER, 'pid array of odd length');
        pids = [];
        for (let i = 0; i < f.data.length; i += 2) {
          const pid = f.data.readUInt16LE(i);
          if (pid >= PARTITION_COUNT) return fail(ResultCode.PARAMETER, `partition ${pid}`);
          pids.push(pid);
        }
        break;
      }
      case FieldType.DIGEST_ARRAY: {
        if (f.data.length % DIGEST_BYTES !== 0) return fail(ResultCode.PARAMETER, 'digest array length');
        digests = [];
        for (let i = 0; i < f.data.length; i += DIGEST_BYTES) digests.push(f.data.subarray(i, i + DIGEST_BYTES));
        break;
      }
      case FieldType.QUERY_BINS: {
        const d = f.data;
        if (d.length < 1) return fail(ResultCode.PARAMETER, 'query bins');
        queryBins = [];
        let p = 1;
        for (let i = 0; i < d[0]!; i++) {
          const len = d[p];
          if (len === undefined || p + 1 + len > d.length) return fail(ResultCode.PARAMETER, 'query bins truncated');
          queryBins.push(d.subarray(p + 1, p + 1 + len).toString('utf8'));
          p += 1 + len;
        }
        break;
      }
      default:
        break;
    }
  }
  if (namespace === undefined) return fail(ResultCode.PARAMETER, 'scan without namespace');
  if (msg.info2 & (Info2.WRITE | Info2.DELETE)) return fail(ResultCode.UNSUPPORTED_FEATURE, 'background scans are not supported');
  if (msg.info4 !== 0) return fail(ResultCode.UNSUPPORTED_FEATURE, 'transactions are not supported');
  let bins: string[] | undefined = queryBins;
  for (const o of msg.ops) {
    if (o.op !== OpType.READ) return fail(ResultCode.UNSUPPORTED_FEATURE, `op ${o.op} in a scan`);
    if (o.name.length > 15) return fail(ResultCode.BIN_NAME, 'bin name too long');
    if (o.name.length === 0) continue;
    (bins ??= []).push(o.name.toString('utf8'));
  }
  if (msg.info1 & Info1.GET_ALL) bins = undefined;
  const partitions: ScanPartitionRequest[] = [];
  if (!pids && !digests) for (let p = 0; p < PARTITION_COUNT; p++) partitions.push({ pid: p });
  for (const pid of pids ?? []) partitions.push({ pid });
  for (const d of digests ?? []) partitions.push({ pid: partitionOf(d), afterDigest: d });
  const req: ScanRequest = {
    namespace,
    partitions,
    maxRecords,
    recordsPerSecond,
    headerOnly: (msg.info1 & Info1.NOBINDATA) !== 0,
  };
  if (set !== undefined) req.set = set;
  if (bins !== undefined) req.bins = bins;
  if (taskId !== undefined) req.taskId = taskId;
  return { ok: true, value: req };
}
