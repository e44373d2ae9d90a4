/**
 * Typed errors of the wire codecs. Every error carries a stable `code` so the server can decide
 * between answering an error result and closing the connection.
 */
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
