/** ApiVersions (18) v0–v2 responses, and the v0-body error answer for versions above 2. */
import { Writer } from '../codec.js';
import { ErrorCode } from '../errors.js';
import { ApiKey, supportedVersions } from '../versions.js';

export function encodeApiVersions(version: number): Writer {
  const w = new Writer();
  w.int16(ErrorCode.NONE);
  w.array([...supportedVersions], (w, [key, r]) => w.int16(key).int16(r.min).int16(r.max));
  if (version >= 1) w.int32(0);
  return w;
}

/** Answer to an ApiVersions version we do not support: error 35 in the v0 layout. */
export function encodeApiVersionsUnsupported(): Writer {
  const range = supportedVersions.get(ApiKey.ApiVersions)!;
  return new Writer().int16(ErrorCode.UNSUPPORTED_VERSION).int32(1).int16(ApiKey.ApiVersions).int16(range.min).int16(range.max);
}
