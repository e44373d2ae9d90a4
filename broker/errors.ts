/**
 * The broker's error registry: the Kafka error codes it answers (numbers from the Kafka
 * protocol, ErrorCode in protocol/errors.ts), the codes of its typed errors (DecodeError, the
 * data-directory lock), each with a one-line meaning; documented in docs/errors.md. The broker is
 * independent of store/, so the registry shape is declared here too.
 */
import type { DataDirLockedError } from './log/dataDirLock.js';
import { DecodeErrorCode, ErrorCode } from './protocol/errors.js';

interface ErrorCodeInfo {
  readonly meaning: string;
  readonly retriable: boolean;
  readonly protocolCode?: number;
}

/** Kafka error codes as a client sees them in a response. */
const KafkaCodes = {
  UNKNOWN_SERVER_ERROR: { protocolCode: ErrorCode.UNKNOWN_SERVER_ERROR, meaning: 'The broker failed the request for an unexpected reason (logged).', retriable: false },
  OFFSET_OUT_OF_RANGE: { protocolCode: ErrorCode.OFFSET_OUT_OF_RANGE, meaning: 'A fetch asked for an offset outside the partition log.', retriable: false },
  CORRUPT_MESSAGE: { protocolCode: ErrorCode.CORRUPT_MESSAGE, meaning: 'A produced record batch failed its CRC or does not parse.', retriable: true },
  UNKNOWN_TOPIC_OR_PARTITION: { protocolCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, meaning: 'No such topic or partition on this broker.', retriable: true },
  MESSAGE_TOO_LARGE: { protocolCode: ErrorCode.MESSAGE_TOO_LARGE, meaning: 'A record batch is larger than the broker accepts (message-max-bytes).', retriable: false },
  COORDINATOR_NOT_AVAILABLE: { protocolCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, meaning: 'The group coordinator is not ready.', retriable: true },
  INVALID_TOPIC_EXCEPTION: { protocolCode: ErrorCode.INVALID_TOPIC_EXCEPTION, meaning: 'The topic name is not valid.', retriable: false },
  INVALID_REQUIRED_ACKS: { protocolCode: ErrorCode.INVALID_REQUIRED_ACKS, meaning: 'A produce request asked for acks other than -1, 0 or 1.', retriable: false },
  ILLEGAL_GENERATION: { protocolCode: ErrorCode.ILLEGAL_GENERATION, meaning: 'A group member used a stale generation; it rejoins.', retriable: false },
  INCONSISTENT_GROUP_PROTOCOL: { protocolCode: ErrorCode.INCONSISTENT_GROUP_PROTOCOL, meaning: 'A joining member offers no protocol the group uses.', retriable: false },
  INVALID_GROUP_ID: { protocolCode: ErrorCode.INVALID_GROUP_ID, meaning: 'The group id is empty or invalid.', retriable: false },
  UNKNOWN_MEMBER_ID: { protocolCode: ErrorCode.UNKNOWN_MEMBER_ID, meaning: 'The group does not know this member (expired or never joined); it rejoins.', retriable: false },
  INVALID_SESSION_TIMEOUT: { protocolCode: ErrorCode.INVALID_SESSION_TIMEOUT, meaning: 'The session timeout is outside the range the broker allows.', retriable: false },
  REBALANCE_IN_PROGRESS: { protocolCode: ErrorCode.REBALANCE_IN_PROGRESS, meaning: 'The group is rebalancing; the member rejoins.', retriable: false },
  INVALID_TIMESTAMP: { protocolCode: ErrorCode.INVALID_TIMESTAMP, meaning: 'A record timestamp is invalid.', retriable: false },
  UNSUPPORTED_VERSION: { protocolCode: ErrorCode.UNSUPPORTED_VERSION, meaning: 'The API version is not supported (see ApiVersions).', retriable: false },
  TOPIC_ALREADY_EXISTS: { protocolCode: ErrorCode.TOPIC_ALREADY_EXISTS, meaning: 'CreateTopics named a topic that exists.', retriable: false },
  INVALID_PARTITIONS: { protocolCode: ErrorCode.INVALID_PARTITIONS, meaning: 'The partition count is invalid.', retriable: false },
  INVALID_REPLICATION_FACTOR: { protocolCode: ErrorCode.INVALID_REPLICATION_FACTOR, meaning: 'The replication factor is invalid (this broker holds one replica).', retriable: false },
  INVALID_CONFIG: { protocolCode: ErrorCode.INVALID_CONFIG, meaning: 'A topic configuration entry is invalid.', retriable: false },
  INVALID_REQUEST: { protocolCode: ErrorCode.INVALID_REQUEST, meaning: 'The request is malformed for its API and version.', retriable: false },
  UNSUPPORTED_FOR_MESSAGE_FORMAT: { protocolCode: ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, meaning: 'Records use a message format older than v2 (magic 2).', retriable: false },
  OUT_OF_ORDER_SEQUENCE_NUMBER: { protocolCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, meaning: 'An idempotent producer skipped a sequence number.', retriable: false },
  DUPLICATE_SEQUENCE_NUMBER: { protocolCode: ErrorCode.DUPLICATE_SEQUENCE_NUMBER, meaning: 'An idempotent producer sent a batch already written.', retriable: false },
  INVALID_PRODUCER_EPOCH: { protocolCode: ErrorCode.INVALID_PRODUCER_EPOCH, meaning: 'A producer used a stale epoch.', retriable: false },
  KAFKA_STORAGE_ERROR: { protocolCode: ErrorCode.KAFKA_STORAGE_ERROR, meaning: 'The broker could not write its log (disk full, I/O error); fetches still work and produce resumes when space returns.', retriable: true },
  UNSUPPORTED_COMPRESSION_TYPE: { protocolCode: ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, meaning: 'The batch uses a compression codec the broker does not support.', retriable: false },
  INVALID_RECORD: { protocolCode: ErrorCode.INVALID_RECORD, meaning: 'A record in the batch is invalid (bad key, header or length).', retriable: false },
} as const satisfies Record<string, ErrorCodeInfo>;

export const BrokerErrors = {
  ...KafkaCodes,
  TRUNCATED: { meaning: 'A request frame ends before the structure it declares; the connection is closed.', retriable: false },
  BAD_LENGTH: { meaning: 'A length or count in a request is negative or absurd; the connection is closed.', retriable: false },
  UNSUPPORTED: { meaning: 'The (API key, version) pair is not in the negotiated table; the connection is closed.', retriable: false },
  DATA_DIR_LOCKED: { meaning: 'Another live process holds the broker data directory.', retriable: false },
} as const satisfies Record<string, ErrorCodeInfo>;

type Missing<Codes extends string> = Exclude<Codes, keyof typeof BrokerErrors>;
true satisfies [Missing<Exclude<keyof typeof ErrorCode, 'NONE'> | keyof typeof DecodeErrorCode | DataDirLockedError['code']>] extends [never] ? true : never;
