/** Request header parsing and response framing (header v0: correlation id only). */
import { Reader } from './codec.js';
import { isFlexible, isSupported } from './versions.js';

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

/**
 * Parses header v1 (or v2 for flexible versions); the reader is left at the start of the body.
 * The tag buffer of a flexible header is read only for a version we serve: the body of an
 * unsupported request is never parsed (ApiVersions gets its error answer regardless).
 */
export function parseRequestHeader(r: Reader): RequestHeader {
  const apiKey = r.int16();
  const apiVersion = r.int16();
  const correlationId = r.int32();
  const clientId = r.nullableString();
  if (isFlexible(apiKey, apiVersion) && isSupported(apiKey, apiVersion)) r.skipTags();
  return { apiKey, apiVersion, correlationId, clientId };
}

/** Frame = int32 size, int32 correlation id, body chunks. */
export function frameResponse(correlationId: number, body: Buffer[]): Buffer[] {
  let size = 4;
  for (const b of body) size += b.length;
  const head = Buffer.allocUnsafe(8);
  head.writeInt32BE(size, 0);
  head.writeInt32BE(correlationId, 4);
  return [head, ...body];
}
