/** What every handler receives besides the request body. */
import type { RequestHeader } from '../protocol/header.js';
import type { BrokerState } from '../state.js';
import type { Reader, Writer } from '../protocol/codec.js';

export interface RequestContext {
  state: BrokerState;
  header: RequestHeader;
  clientHost: string;
}

/** Returns the response body, or null when no response is sent (Produce with acks=0). */
export type Handler = (ctx: RequestContext, r: Reader) => Writer | null | Promise<Writer | null>;
