/**
 * Typed errors of the wire codecs. Every error carries a stable `code` so the server can decide
 * between answering an error result and closing the connection. WireErrors below is the wire
 * component's error registry (codec codes and the result codes the server answers), documented
 * in docs/errors.md.
 */
import type { AllRegistered, ErrorRegistry } from '../error-registry.js';
import { ResultCode } from '../types.js';
export const WireErrorCode = {
  /** Proto header version is not 2. */
  BAD_VERSION: 'BAD_VERSION',
  /** Proto message type the receiver does not handle. */
  BAD_TYPE: 'BAD_TYPE',
  /** Declared body larger than the limit. */
  TOO_LARGE: 'TOO_LARGE',
  /** The bytes end before the structure they declare. */
  TRUNCATED: 'TRUNCATED',
  /** A field is malformed (bad size, bad payload). */
  BAD_FIELD: 'BAD_FIELD',
  /** An op is malformed. */
  BAD_OP: 'BAD_OP',
  /** AS_MSG header malformed (header size not 22...). */
  BAD_HEADER: 'BAD_HEADER',
  /** A compressed message does not inflate to what it declares. */
  BAD_COMPRESSION: 'BAD_COMPRESSION',
  /** A batch-index field is malformed. */
  BAD_BATCH: 'BAD_BATCH',
  /** An info body is malformed. */
  BAD_INFO: 'BAD_INFO',
  /** The replicated-write extension field is malformed. */
  BAD_REPLICATED: 'BAD_REPLICATED',
} as const;
export type WireErrorCodeId = (typeof WireErrorCode)[keyof typeof WireErrorCode];

export class WireError extends Error {
  readonly code: WireErrorCodeId;
  constructor(code: WireErrorCodeId, message: string) {
    super(`${code}: ${message}`);
    this.name = 'WireError';
    this.code = code;
  }
}

/** A failed command as a client sees it: an Aerospike result code, or a client-side failure. */
export class AerospikeError extends Error {
  /** Aerospike result code (server codes >= 0; client-side failures negative as in the C client). */
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'AerospikeError';
    this.code = code;
  }
}

/** Client-side result codes (negative, never on the wire), as the C client numbers them. */
export const ClientResultCode = {
  CLIENT: -1,
  PARAM: -2,
  CONNECTION: -10,
  TIMEOUT: 9,
} as const;

/** Aerospike result codes, as a client sees them in a failed command (ResultCode, store/types.ts). */
const ResultCodes = {
  SERVER_ERROR: { protocolCode: ResultCode.SERVER_ERROR, meaning: 'The server failed the command for an internal reason (logged).', retriable: true },
  NOT_FOUND: { protocolCode: ResultCode.NOT_FOUND, meaning: 'The record does not exist (or has expired).', retriable: false },
  GENERATION: { protocolCode: ResultCode.GENERATION, meaning: 'The generation check of the write policy failed: the record changed meanwhile.', retriable: false },
  PARAMETER: { protocolCode: ResultCode.PARAMETER, meaning: 'A bad request parameter (field, op or info parameter).', retriable: false },
  RECORD_EXISTS: { protocolCode: ResultCode.RECORD_EXISTS, meaning: 'A create-only write found the record already there.', retriable: false },
  BIN_EXISTS: { protocolCode: ResultCode.BIN_EXISTS, meaning: 'A create-only bin operation found the bin already there.', retriable: false },
  CLUSTER_KEY_MISMATCH: { protocolCode: ResultCode.CLUSTER_KEY_MISMATCH, meaning: 'The cluster changed under a scan or migration that named the old cluster key.', retriable: true },
  OUT_OF_SPACE: { protocolCode: ResultCode.OUT_OF_SPACE, meaning: 'Stop-writes: the namespace refuses writes (device or filesystem full, memory over its limit); statistics say why.', retriable: true },
  TIMEOUT: { protocolCode: ResultCode.TIMEOUT, meaning: 'The command did not finish in time (replicas did not answer): its outcome is unknown.', retriable: true },
  ALWAYS_FORBIDDEN: { protocolCode: ResultCode.ALWAYS_FORBIDDEN, meaning: 'The operation is never allowed on this namespace or set.', retriable: false },
  UNAVAILABLE: { protocolCode: ResultCode.UNAVAILABLE, meaning: 'The partition has no available master here (cluster changing); retry after the client refreshes the map.', retriable: true },
  INCOMPATIBLE_TYPE: { protocolCode: ResultCode.INCOMPATIBLE_TYPE, meaning: 'An operation does not fit the bin\'s value type (increment a string).', retriable: false },
  RECORD_TOO_BIG: { protocolCode: ResultCode.RECORD_TOO_BIG, meaning: 'The record is larger than a write block.', retriable: false },
  KEY_BUSY: { protocolCode: ResultCode.KEY_BUSY, meaning: 'Too many commands queued on one key (transaction-pending-limit).', retriable: true },
  SCAN_ABORT: { protocolCode: ResultCode.SCAN_ABORT, meaning: 'A scan was aborted (by the client, or the node closed).', retriable: true },
  UNSUPPORTED_FEATURE: { protocolCode: ResultCode.UNSUPPORTED_FEATURE, meaning: 'The server does not support the requested feature.', retriable: false },
  BIN_NOT_FOUND: { protocolCode: ResultCode.BIN_NOT_FOUND, meaning: 'A bin operation named a bin the record does not have.', retriable: false },
  DEVICE_OVERLOAD: { protocolCode: ResultCode.DEVICE_OVERLOAD, meaning: 'The node has too much in flight (unwritten blocks, replica writes); back off and retry.', retriable: true },
  KEY_MISMATCH: { protocolCode: ResultCode.KEY_MISMATCH, meaning: 'The key sent does not match the key stored with the record.', retriable: false },
  NAMESPACE_NOT_FOUND: { protocolCode: ResultCode.NAMESPACE_NOT_FOUND, meaning: 'No namespace of that name on this node.', retriable: false },
  BIN_NAME: { protocolCode: ResultCode.BIN_NAME, meaning: 'A bin name is longer than 15 bytes or otherwise invalid.', retriable: false },
  FORBIDDEN: { protocolCode: ResultCode.FORBIDDEN, meaning: 'The write is not allowed now: the namespace is fenced (passive site) or the set limit is reached.', retriable: false },
  ELEMENT_NOT_FOUND: { protocolCode: ResultCode.ELEMENT_NOT_FOUND, meaning: 'A list or map operation did not find the element.', retriable: false },
  ELEMENT_EXISTS: { protocolCode: ResultCode.ELEMENT_EXISTS, meaning: 'A create-only list or map operation found the element already there.', retriable: false },
  ENTERPRISE_ONLY: { protocolCode: ResultCode.ENTERPRISE_ONLY, meaning: 'The feature is Aerospike Enterprise only and not offered.', retriable: false },
  OP_NOT_APPLICABLE: { protocolCode: ResultCode.OP_NOT_APPLICABLE, meaning: 'The operation cannot apply to the value as it is.', retriable: false },
  FILTERED_OUT: { protocolCode: ResultCode.FILTERED_OUT, meaning: 'The filter expression excluded the record.', retriable: false },
  LOST_CONFLICT: { protocolCode: ResultCode.LOST_CONFLICT, meaning: 'A replicated (XDR) write lost conflict resolution to the version already stored.', retriable: false },
  XDR_KEY_BUSY: { protocolCode: ResultCode.XDR_KEY_BUSY, meaning: 'A replicated write found the key busy; the receiver retries.', retriable: true },
  SECURITY_NOT_ENABLED: { protocolCode: ResultCode.SECURITY_NOT_ENABLED, meaning: 'A security command was sent to a node without security.', retriable: false },
  NOT_AUTHENTICATED: { protocolCode: ResultCode.NOT_AUTHENTICATED, meaning: 'The connection has not authenticated.', retriable: false },
  UDF_EXECUTION: { protocolCode: ResultCode.UDF_EXECUTION, meaning: 'User-defined functions are not supported.', retriable: false },
  BATCH_DISABLED: { protocolCode: ResultCode.BATCH_DISABLED, meaning: 'Batch commands are disabled.', retriable: false },
  BATCH_MAX_REQUESTS: { protocolCode: ResultCode.BATCH_MAX_REQUESTS, meaning: 'A batch names more keys than the node accepts.', retriable: false },
  BATCH_QUEUES_FULL: { protocolCode: ResultCode.BATCH_QUEUES_FULL, meaning: 'Every batch queue is full; retry later.', retriable: true },
  GEO_INVALID_GEOJSON: { protocolCode: ResultCode.GEO_INVALID_GEOJSON, meaning: 'A GeoJSON value does not parse.', retriable: false },
  SINDEX_NOT_FOUND: { protocolCode: ResultCode.SINDEX_NOT_FOUND, meaning: 'Secondary indexes are not supported: no such index.', retriable: false },
} as const satisfies ErrorRegistry;

/** The wire component's error registry: codec error codes (WireError) and result codes. */
export const WireErrors = {
  BAD_VERSION: { meaning: 'The proto header version is not 2 (framing: the connection is closed).', retriable: false },
  BAD_TYPE: { meaning: 'A proto message type the server does not handle (framing: the connection is closed).', retriable: false },
  TOO_LARGE: { meaning: 'The declared message body is larger than the limit (framing: the connection is closed).', retriable: false },
  TRUNCATED: { meaning: 'The bytes end before the structure they declare.', retriable: false },
  BAD_FIELD: { meaning: 'A field is malformed (bad size, bad payload); the command answers PARAMETER.', retriable: false },
  BAD_OP: { meaning: 'An operation is malformed; the command answers PARAMETER.', retriable: false },
  BAD_HEADER: { meaning: 'The AS_MSG header is malformed (header size not 22).', retriable: false },
  BAD_COMPRESSION: { meaning: 'A compressed message does not inflate to what it declares (the connection is closed).', retriable: false },
  BAD_BATCH: { meaning: 'A batch-index field is malformed.', retriable: false },
  BAD_INFO: { meaning: 'An info request body is malformed.', retriable: false },
  BAD_REPLICATED: { meaning: 'The replicated-write extension field is malformed.', retriable: false },
  ...ResultCodes,
} as const satisfies ErrorRegistry;

true satisfies AllRegistered<WireErrorCodeId | Exclude<keyof typeof ResultCode, 'OK'>, typeof WireErrors>;
