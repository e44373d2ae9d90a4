/**
 * Record metadata rules, pure: generation, last-update time, void time, and the answers a
 * transaction gives. Generation increments on every write (skipping 0 when it wraps) and keeps
 * increasing across a delete; LUT is max(now, previous + 1), so one record's LUTs never tie.
 */
import type { IndexEntry } from '../storage/primary-index.js';
import { CITRUSLEAF_EPOCH_S, ResultCode, Ttl, type Bin, type RecordResult, type ResultCodeId } from '../types.js';

export function nowVoidS(nowMs: number): number {
  return Math.floor(nowMs / 1000) - CITRUSLEAF_EPOCH_S;
}

export function isExpired(e: IndexEntry, nowMs: number): boolean {
  return e.voidTimeS !== 0 && e.voidTimeS <= nowVoidS(nowMs);
}

export function nextMeta(prev: IndexEntry | undefined, nowMs: number): { generation: number; lutMs: number } {
  if (!prev) return { generation: 1, lutMs: nowMs };
  let generation = (prev.generation + 1) >>> 0;
  if (generation === 0) generation = 1;
  return { generation, lutMs: Math.max(nowMs, prev.lutMs + 1) };
}

/** Void time of a write with TTL `ttl` (Aerospike's encodings: -2 keep, -1 never, 0 default). */
export function voidTimeFor(ttl: number, prevVoid: number | undefined, nowMs: number, defaultTtlS: number): number {
  if (ttl === Ttl.DONT_UPDATE && prevVoid !== undefined) return prevVoid;
  if (ttl === Ttl.NEVER_EXPIRE) return 0;
  const s = ttl > 0 ? ttl : defaultTtlS;
  return s === 0 ? 0 : nowVoidS(nowMs) + s;
}

export function fail(resultCode: ResultCodeId): RecordResult {
  return { resultCode, generation: 0, voidTimeS: 0, bins: [], lutMs: 0 };
}

export function ok(generation: number, voidTimeS: number, bins: Bin[], lutMs: number): RecordResult {
  return { resultCode: ResultCode.OK, generation, voidTimeS, bins, lutMs };
}
