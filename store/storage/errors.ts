/** Typed storage errors: every failure the storage layer reports has a stable code. */
export const StorageErrorCode = {
  /** A record failed its checksum or its bytes do not parse. Reported, never returned as data. */
  CHECKSUM: 'CHECKSUM',
  /** Bad storage configuration (sizes, paths). */
  CONFIG: 'CONFIG',
  /** No free write block: the device is full. */
  DEVICE_FULL: 'DEVICE_FULL',
  /** The record does not fit in one write block. */
  RECORD_TOO_BIG: 'RECORD_TOO_BIG',
  /** More sets than a namespace may hold. */
  SET_LIMIT: 'SET_LIMIT',
  /** A snapshot or log file is unreadable. */
  CORRUPT_FILE: 'CORRUPT_FILE',
  /** The storage was used after close. */
  CLOSED: 'CLOSED',
  /** A close finished without everything it should write (disk full): the next start is cold. */
  CLOSE_INCOMPLETE: 'CLOSE_INCOMPLETE',
  /** A device or file write failed for another reason than space (I/O error, permissions). */
  IO: 'IO',
} as const;
export type StorageErrorCodeId = (typeof StorageErrorCode)[keyof typeof StorageErrorCode];

export class StorageError extends Error {
  readonly retriable: boolean;
  constructor(
    readonly code: StorageErrorCodeId,
    message: string,
    options?: { cause?: unknown; retriable?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StorageError';
    this.retriable = options?.retriable ?? false;
  }
}
