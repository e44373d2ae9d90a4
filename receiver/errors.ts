/**
 * The receiver's error registry, documented in docs/errors.md. A transient refusal fails the
 * batch (retried in place, then by the consumer from the last committed offset); a permanent one
 * dead-letters the message; a message that does not decode is dead-lettered as SHIP_DECODE (a
 * store code: the shipped-record codec lives in store/xdr).
 */
import { RegisteredError, type ErrorRegistry } from '../store/index.js';

export const ReceiverErrors = {
  DESTINATION_BUSY: { meaning: 'The destination answered a transient result code (timeout, key busy, out of space, overload, unavailable, server error, cluster changing); the batch is retried.', retriable: true },
  STOPPING: { meaning: 'The receiver is stopping: the rest of the batch is not applied and its offsets are not committed (the next consumer applies it).', retriable: true },
} as const satisfies ErrorRegistry;
export type ReceiverErrorCodeId = keyof typeof ReceiverErrors;

/** A receiver failure with a stable code from ReceiverErrors. */
export class ReceiverError extends RegisteredError<ReceiverErrorCodeId> {
  constructor(code: ReceiverErrorCodeId, message: string, options?: { cause?: unknown }) {
    super(code, ReceiverErrors[code], message, options);
    this.name = 'ReceiverError';
  }
}
