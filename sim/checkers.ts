/**
 * End-of-run checkers, kept outside the system under test:
 * - the ledger of acknowledged writes (commit-to-device) against what site A holds;
 * - site B against site A, record by record: digest, generation, LUT, void time, tombstone, set,
 *   bins. A record whose void time has passed counts as its expiry tombstone (same generation
 *   and LUT), whether or not that site's expiry pass has reached it yet (as ops/verify does).
 */
import type { Namespace } from '../store/namespace/namespace.js';
import { CITRUSLEAF_EPOCH_S, PARTITION_COUNT, SYSTEM_SET_NAME, type Bin, type PartitionId, type RecordVersion } from '../store/types.js';

/** The newest acknowledged version of one key, by LUT. */
export interface Acked {
  key: string;
  kind: string;
  lutMs: number;
  generation: number;
  tombstone: boolean;
  voidTimeS: number;
  /** Bins of an acknowledged replace-put. */
  bins?: Bin[];
}

function expired(v: { voidTimeS: number }, nowMs: number): boolean {
  return v.voidTimeS !== 0 && (CITRUSLEAF_EPOCH_S + v.voidTimeS) * 1000 <= nowMs;
}

function binsText(bins: readonly Bin[]): string {
  return [...bins]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((b) => `${b.name}:${b.type}:${b.bytes.toString('hex')}`)
    .join(',');
}

/** One record as the checkers compare it. */
export function canonical(v: RecordVersion, nowMs: number): string {
  const tomb = v.tombstone || expired(v, nowMs);
  return `set=${v.set} gen=${v.generation} lut=${v.lutMs} void=${tomb ? 0 : v.voidTimeS} tomb=${tomb ? 1 : 0} bins=${tomb ? '' : binsText(v.bins)}`;
}

export function snapshot(ns: Namespace, nowMs: number): Map<string, string> {
  const out = new Map<string, string>();
  for (let p = 0; p < PARTITION_COUNT; p++) {
    for (const v of ns.scanPartition(p as PartitionId, { includeTombstones: true, includeExpired: true })) {
      if (v.set === SYSTEM_SET_NAME) continue;
      out.set(v.digest.toString('hex'), canonical(v, nowMs));
    }
  }
  return out;
}

export function compareSites(a: Map<string, string>, b: Map<string, string>, limit = 10): string[] {
  const diffs: string[] = [];
  for (const [d, va] of a) {
    const vb = b.get(d);
    if (vb !== va) diffs.push(`${d}: A ${va} | B ${vb ?? 'missing'}`);
  }
  for (const [d, vb] of b) if (!a.has(d)) diffs.push(`${d}: A missing | B ${vb}`);
  return diffs.slice(0, limit).concat(diffs.length > limit ? [`... ${diffs.length - limit} more`] : []);
}

/** Every acknowledged write is on A: as acknowledged, or superseded by a newer version. */
export function checkLedger(ns: Namespace, ledger: Map<string, Acked & { digest: Buffer }>, nowMs: number): string[] {
  const out: string[] = [];
  for (const ack of ledger.values()) {
    const v = ns.readVersion(ack.digest);
    const want = `${ack.kind} gen=${ack.generation} lut=${ack.lutMs} tomb=${ack.tombstone ? 1 : 0}`;
    if (!v) {
      out.push(`${ack.key}: acknowledged ${want} but A has no record`);
      continue;
    }
    if (v.lutMs > ack.lutMs) continue;
    if (v.lutMs < ack.lutMs) {
      out.push(`${ack.key}: acknowledged ${want} but A holds an older version lut=${v.lutMs} gen=${v.generation}`);
      continue;
    }
    const expiredNow = !ack.tombstone && expired(ack, nowMs);
    const tomb = v.tombstone || expired(v, nowMs);
    if (tomb !== (ack.tombstone || expiredNow) || v.generation !== ack.generation) {
      out.push(`${ack.key}: acknowledged ${want} but A holds gen=${v.generation} tomb=${v.tombstone ? 1 : 0} at the same LUT`);
    } else if (ack.bins && !tomb && binsText(v.bins) !== binsText(ack.bins)) {
      out.push(`${ack.key}: acknowledged ${want} with other bins than A holds`);
    }
  }
  return out;
}
