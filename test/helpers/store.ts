/** Helpers for in-process store tests: temporary directories and namespace configs. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNodeConfig, type NamespaceConfig } from '../../store/config.js';
import { computeDigest, userKeyOf, type KeyInput } from '../../store/digest.js';
import { OpType, ParticleType, type Bin, type Op, type RecordCommand, type Value } from '../../store/types.js';

export function tempDir(prefix = 'ferry-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A validated namespace config rooted in `data`, with the given namespace keys. */
export function nsConfig(data: string, keys: Record<string, unknown> = {}): NamespaceConfig {
  const c = loadNodeConfig({ env: {}, overrides: { data, namespaces: [{ name: 'test', filesize: 64 * 1024 * 1024, 'write-log-entries': 65536, ...keys }] } });
  return c.namespaces[0]!;
}

export const str = (s: string): Value => ({ type: ParticleType.STRING, bytes: Buffer.from(s) });
export const int = (n: number | bigint): Value => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(n));
  return { type: ParticleType.INTEGER, bytes: b };
};
export const dbl = (n: number): Value => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  return { type: ParticleType.FLOAT, bytes: b };
};
export const blob = (b: Buffer): Value => ({ type: ParticleType.BLOB, bytes: b });

export function put(key: KeyInput, bins: Record<string, Value>, extra: Partial<RecordCommand> = {}): RecordCommand {
  const ops: Op[] = Object.entries(bins).map(([bin, value]) => ({ op: OpType.WRITE, bin, value }));
  return { namespace: 'test', set: 'demo', digest: computeDigest('demo', key), key: userKeyOf(key), ops, ...extra };
}

export function get(key: KeyInput, extra: Partial<RecordCommand> = {}): RecordCommand {
  return { namespace: 'test', set: 'demo', digest: computeDigest('demo', key), ops: [], readAll: true, ...extra };
}

export function remove(key: KeyInput): RecordCommand {
  return { namespace: 'test', set: 'demo', digest: computeDigest('demo', key), ops: [{ op: OpType.DELETE, bin: '', value: { type: ParticleType.NULL, bytes: Buffer.alloc(0) } }] };
}

export function op(key: KeyInput, ops: Op[], extra: Partial<RecordCommand> = {}): RecordCommand {
  return { namespace: 'test', set: 'demo', digest: computeDigest('demo', key), ops, ...extra };
}

export function binsOf(bins: Bin[]): Record<string, string | bigint | number> {
  const out: Record<string, string | bigint | number> = {};
  for (const b of bins) {
    if (b.type === ParticleType.STRING) out[b.name] = b.bytes.toString();
    else if (b.type === ParticleType.INTEGER) out[b.name] = b.bytes.readBigInt64BE(0);
    else if (b.type === ParticleType.FLOAT) out[b.name] = b.bytes.readDoubleBE(0);
    else out[b.name] = b.bytes.toString('hex');
  }
  return out;
}
