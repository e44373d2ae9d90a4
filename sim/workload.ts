/**
 * The simulator's client workload: random commands over a small key space with one hot key,
 * covering every value type, increments, deletes and short TTLs. Pure: a PRNG in, commands out.
 */
import { computeDigest } from '../store/digest.js';
import { packValue } from '../store/client/msgpack.js';
import { toWireValue, GeoJSON } from '../store/client/values.js';
import type { Random } from '../store/runtime/index.js';
import { ExistsPolicy, OpType, ParticleType, type Bin, type RecordCommand } from '../store/types.js';

export const SIM_NAMESPACE = 'sim';
export const SIM_SET = 'items';
/** Keys the workload touches, besides the hot key. */
const KEYS_COUNT = 60;
/** Chance (percent) that a command goes to the hot key. */
const HOT_KEY_PCT = 25;
/** Chance (percent) that a put carries a short TTL (1..4 s). */
const SHORT_TTL_PCT = 15;

export type CommandKind = 'put' | 'incr' | 'delete' | 'touch';

export interface SimCommand {
  kind: CommandKind;
  key: string;
  cmd: RecordCommand;
  /** Bins a put replaces the record's with (so an acknowledged put fixes the record's bins). */
  bins?: Bin[];
}

function intBytes(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(v);
  return b;
}

function randomBins(r: Random): Bin[] {
  const d = Buffer.alloc(8);
  d.writeDoubleBE((r.int(2_000_000) - 1_000_000) / 7);
  const blob = Buffer.alloc(1 + r.int(40));
  for (let i = 0; i < blob.length; i++) blob[i] = r.int(256);
  const bins: Bin[] = [
    { name: 'i', type: ParticleType.INTEGER, bytes: intBytes(BigInt(r.u32()) - 2_000_000_000n) },
    { name: 'd', type: ParticleType.FLOAT, bytes: d },
    { name: 's', type: ParticleType.STRING, bytes: Buffer.from(`v${r.u32().toString(36)}`.repeat(1 + r.int(20))) },
    { name: 'b', type: ParticleType.BLOB, bytes: blob },
    { name: 't', type: ParticleType.BOOL, bytes: Buffer.from([r.int(2)]) },
    { name: 'l', type: ParticleType.LIST, bytes: packValue([r.int(100), `x${r.int(100)}`, [r.int(3)]]) },
    { name: 'm', type: ParticleType.MAP, bytes: packValue(new Map<string, number>([['a', r.int(9)], ['z', r.int(9)]])) },
    { name: 'g', ...toWireValue(new GeoJSON(JSON.stringify({ type: 'Point', coordinates: [r.int(180) - 90, r.int(90) - 45] }))) },
  ];
  // Not every record has every bin: a replace must drop the ones it does not carry.
  return bins.filter((_, i) => i < 2 || r.int(4) > 0);
}

export class Workload {
  /** `shortTtl` false: puts never expire (the PRNG draws stay the same, so a seed's commands do too). */
  constructor(
    private readonly r: Random,
    private readonly shortTtl = true,
  ) {}

  keyOf(): string {
    return this.r.int(100) < HOT_KEY_PCT ? 'hot' : `k${this.r.int(KEYS_COUNT)}`;
  }

  next(): SimCommand {
    const key = this.keyOf();
    const base = { namespace: SIM_NAMESPACE, set: SIM_SET, digest: computeDigest(SIM_SET, key) };
    const roll = this.r.int(100);
    if (roll < 50) {
      const bins = randomBins(this.r);
      const short = this.r.int(100) < SHORT_TTL_PCT;
      const ttlS = short ? 1 + this.r.int(4) : -1;
      const ops = bins.map((b) => ({ op: OpType.WRITE, bin: b.name, value: { type: b.type, bytes: b.bytes } }));
      return { kind: 'put', key, bins, cmd: { ...base, key: { type: ParticleType.STRING, bytes: Buffer.from(key) }, ops, exists: ExistsPolicy.REPLACE, ttlS: short && !this.shortTtl ? -1 : ttlS } };
    }
    if (roll < 75) {
      const ops = [{ op: OpType.INCR, bin: 'n', value: { type: ParticleType.INTEGER, bytes: intBytes(BigInt(1 + this.r.int(10))) } }];
      return { kind: 'incr', key, cmd: { ...base, ops, ttlS: -2 } };
    }
    if (roll < 92) {
      return { kind: 'delete', key, cmd: { ...base, ops: [{ op: OpType.DELETE, bin: '', value: { type: ParticleType.NULL, bytes: Buffer.alloc(0) } }], durableDelete: true } };
    }
    return { kind: 'touch', key, cmd: { ...base, ops: [{ op: OpType.TOUCH, bin: '', value: { type: ParticleType.NULL, bytes: Buffer.alloc(0) } }], ttlS: -1 } };
  }
}
