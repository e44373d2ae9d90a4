/**
 * The shipper's error registry (codes of XdrConfigError, ShipperError and the Kafka link's
 * MessageTooLargeError it reports), documented in docs/errors.md.
 */
import type { MessageTooLargeError } from '../kafka/index.js';
import { RegisteredError, type AllRegistered, type ErrorRegistry } from '../store/index.js';
import type { XdrConfigError } from './config.js';

export const ShipperErrors = {
  CONFIG: { meaning: 'The xdr section of the configuration is invalid; the message names the key.', retriable: false },
  UNKNOWN_NAMESPACE: { meaning: 'An xdr destination names a namespace this node does not have.', retriable: false },
  NO_PARTITIONS: { meaning: 'The destination topic exists with no partitions.', retriable: false },
  NOT_CONNECTED: { meaning: 'A batch was to be produced before the Kafka producer connected; the stream reconnects and retries.', retriable: true },
  STOPPED: { meaning: 'The shipper was stopped while it connected; nothing stays connected behind the stop.', retriable: false },
  MESSAGE_TOO_LARGE: { meaning: 'Kafka refused a batch as larger than it accepts (message.max.bytes); the shipper halves the request; a lone record too large is skipped and stays at the source.', retriable: false },
} as const satisfies ErrorRegistry;
export type ShipperErrorCodeId = Exclude<keyof typeof ShipperErrors, 'CONFIG' | 'MESSAGE_TOO_LARGE'>;

/** A shipper failure with a stable code from ShipperErrors. */
export class ShipperError extends RegisteredError<ShipperErrorCodeId> {
  constructor(code: ShipperErrorCodeId, message: string, options?: { cause?: unknown }) {
    super(code, ShipperErrors[code], message, options);
    this.name = 'ShipperError';
  }
}

true satisfies AllRegistered<ShipperErrorCodeId | XdrConfigError['code'] | MessageTooLargeError['code'], typeof ShipperErrors>;
