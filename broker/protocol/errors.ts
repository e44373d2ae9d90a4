/**
 * Kafka protocol error codes the broker answers with (numbers from the Kafka protocol), and the
 * typed error thrown by the codecs when a request cannot be parsed.
 */
export const ErrorCode = {
  UNKNOWN_SERVER_ERROR: -1,
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  MESSAGE_TOO_LARGE: 10,
  COORDINATOR_NOT_AVAILABLE: 15,
  INVALID_TOPIC_EXCEPTION: 17,
  INVALID_REQUIRED_ACKS: 21,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  INVALID_TIMESTAMP: 32,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  INVALID_PRODUCER_EPOCH: 47,
  KAFKA_STORAGE_ERROR: 56,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
  INVALID_RECORD: 87,
} as const;
export type ErrorCodeId = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Why a frame could not be decoded; the server closes the connection on these. */
export const DecodeErrorCode = {
  /** The bytes end before the structure they declare. */
  TRUNCATED: 'TRUNCATED',
  /** A length or count is negative or absurd. */
  BAD_LENGTH: 'BAD_LENGTH',
  /** The (api key, version) pair is not in the negotiated table. */
  UNSUPPORTED: 'UNSUPPORTED',
} as const;
export type DecodeErrorCodeId = (typeof DecodeErrorCode)[keyof typeof DecodeErrorCode];

export class DecodeError extends Error {
  readonly code: DecodeErrorCodeId;
  constructor(code: DecodeErrorCodeId, message: string) {
    super(`${code}: ${message}`);
    this.name = 'DecodeError';
    this.code = code;
  }
}

/** A storage or broker-level failure that maps onto one Kafka error code. */
export class KafkaError extends Error {
  readonly code: ErrorCodeId;
  constructor(code: ErrorCodeId, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KafkaError';
    this.code = code;
  }
}
