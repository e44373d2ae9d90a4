/**
 * The shape of an error registry: one per component (store, wire, shipper, receiver, ops; the
 * broker keeps its own copy of this shape, being independent), listing every code its typed
 * errors carry with a one-line meaning. docs/errors.md documents them; test/errors.test.ts keeps
 * the page and the registries in sync.
 */
export interface ErrorCodeInfo {
  /** What the code means, one line, as docs/errors.md shows it. */
  readonly meaning: string;
  /** Whether the same request may succeed later (a full disk, an unreachable peer). */
  readonly retriable: boolean;
  /** The number on the wire, for protocol codes (Aerospike result codes, Kafka error codes). */
  readonly protocolCode?: number;
}

export type ErrorRegistry = Readonly<Record<string, ErrorCodeInfo>>;

/** `true` when every code in `Codes` has an entry in `R`, else `never` (assert with `satisfies`). */
export type AllRegistered<Codes extends string, R> = [Exclude<Codes, keyof R>] extends [never] ? true : never;

/** A typed error whose code, and so whether it is retriable, comes from a registry entry. */
export class RegisteredError<Code extends string> extends Error {
  readonly retriable: boolean;
  constructor(
    readonly code: Code,
    info: ErrorCodeInfo,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retriable = info.retriable;
  }
}
