/**
 * `npm run bench -- store [--records N] [--ops N] [--dir DIR]`
 *
 * In-process figures of the store engine, next to the goals of issue #2:
 * - index_bytes_per_record: primary index memory / records, after loading N records (10 M default)
 * - write_ops_per_s / read_ops_per_s with 100-byte and 1 KiB values (buffered writes)
 * - cold_restart_s and cold_restart_mb_per_s next to disk_read_mb_per_s, the raw sequential read
 *   bandwidth of the same device file measured in the same run (page cache dropped first when
 *   the machine lets us; the output says whether it did)
 * - warm_restart_s for the N records
 * Ends with one line of JSON {"bench":"store", ...}.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNodeConfig, computeDigest, openNamespace, OpType, ParticleType, type Namespace, type RecordCommand } from '../store/index.js';
import { BenchArgs } from './args.js';

const GOALS = { indexBytesPerRecord: 48, coldVsDiskPct: 70, warmRestartS: 1, writeOpsPerS: 300_000 };
/** Commands kept in flight by the in-process load loops. */
const IN_FLIGHT = 64;


/** Digests of every key the benchmark uses, computed before timing (the store API takes digests; clients compute them). */
let digests: Buffer = Buffer.alloc(0);
function prepareDigests(n: number): void {
  digests = Buffer.allocUnsafe(n * 20);
  for (let i = 0; i < n; i++) computeDigest('bench', i).copy(digests, i * 20);
}
function digestOf(i: number): Buffer {
  return digests.subarray(i * 20, i * 20 + 20);
}

function keyCmd(i: number, value?: Buffer): RecordCommand {
  const digest = digestOf(i);
  if (value) return { namespace: 'test', set: 'bench', digest, ops: [{ op: OpType.WRITE, bin: 'v', value: { type: ParticleType.BLOB, bytes: value } }] };
  return { namespace: 'test', set: 'bench', digest, ops: [], readAll: true };
}

/** Runs `n` commands with IN_FLIGHT outstanding; returns ops/s. */
async function drive(n: number, make: (i: number) => RecordCommand, ns: Namespace): Promise<number> {
  let next = 0;
  let bad = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < n) {
      const r = await ns.execute(make(next++));
      if (r.resultCode !== 0) bad++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  if (bad > 0) throw new Error(`${bad} of ${n} commands failed`);
  return n / ((performance.now() - t0) / 1000);
}

function dropCaches(): boolean {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

function sequentialReadMbPerS(path: string): number {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
  let total = 0;
  const t0 = performance.now();
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, total);
    if (n <= 0) break;
    total += n;
  }
  closeSync(fd);
  return total / (1024 * 1024) / ((performance.now() - t0) / 1000);
}

export async function main(args: string[]): Promise<void> {
  const opts = new BenchArgs(args);
  const records = opts.num('records', 10_000_000, 1);
  const ops = opts.num('ops', 500_000, 1);
  const dir = mkdtempSync(join(opts.str('dir', tmpdir()), 'ferry-bench-store-'));
  const valueBytes = 100;
  // Device big enough for the records at ~176 B each on disk, plus room for defrag.
  const filesize = Math.max(256, Math.ceil((records * 200 * 1.5) / (1024 * 1024))) * 1024 * 1024;
  const cfg = loadNodeConfig({
    env: {},
    overrides: { data: dir, namespaces: [{ name: 'test', filesize, 'nsup-period': 0, 'tomb-raider-period': 0, 'read-cache-blocks': 256, 'write-log-entries': 1 << 20 }] },
  }).namespaces[0]!;
  const out: Record<string, number | string | boolean> = { bench: 'store', records };
  try {
    console.log(`store bench: ${records.toLocaleString()} records, ${ops.toLocaleString()} ops per phase, data in ${dir}`);
    prepareDigests(records + 2 * ops);
    let ns = await openNamespace(cfg);

    // Throughput phases on a fresh key range.
    const v100 = Buffer.alloc(valueBytes, 7);
    const v1k = Buffer.alloc(1024, 9);
    out.write_ops_per_s_100b = Math.round(await drive(ops, (i) => keyCmd(records + i, v100), ns));
    out.read_ops_per_s_100b = Math.round(await drive(ops, (i) => keyCmd(records + ((i * 7919) % ops)), ns));
    out.write_ops_per_s_1k = Math.round(await drive(ops, (i) => keyCmd(records + ops + i, v1k), ns));
    out.read_ops_per_s_1k = Math.round(await drive(ops, (i) => keyCmd(records + ops + ((i * 7919) % ops)), ns));
    out.write_ops_per_s = out.write_ops_per_s_100b;
    out.read_ops_per_s = out.read_ops_per_s_100b;
    console.log(`writes/s 100 B: ${out.write_ops_per_s_100b}  1 KiB: ${out.write_ops_per_s_1k}   (goal >= ${GOALS.writeOpsPerS} buffered)`);
    console.log(`reads/s  100 B: ${out.read_ops_per_s_100b}  1 KiB: ${out.read_ops_per_s_1k}`);
    await ns.truncate('bench');
    await ns.close();
    rmSync(cfg.dir, { recursive: true, force: true });

    // Load N records.
    ns = await openNamespace(cfg);
    const t0 = performance.now();
    const loadRate = await drive(records, (i) => keyCmd(i, v100), ns);
    out.load_ops_per_s = Math.round(loadRate);
    const s = ns.store.stats();
    out.index_bytes_per_record = Number((s.indexBytes / s.records).toFixed(2));
    console.log(`loaded ${records.toLocaleString()} records in ${((performance.now() - t0) / 1000).toFixed(1)} s (${out.load_ops_per_s}/s)`);
    console.log(`index bytes/record: ${out.index_bytes_per_record}   (goal <= ${GOALS.indexBytesPerRecord}; Aerospike: 64)`);

    // Warm restart.
    await ns.close();
    let t = performance.now();
    ns = await openNamespace(cfg);
    out.warm_restart_s = Number(((performance.now() - t) / 1000).toFixed(3));
    if (ns.openReport.mode !== 'warm') throw new Error(`expected a warm restart, got ${ns.openReport.mode}`);
    console.log(`warm restart: ${out.warm_restart_s} s for ${ns.openReport.records.toLocaleString()} records   (goal <= ${GOALS.warmRestartS} s)`);

    // Cold restart: crash-like (no snapshot).
    await ns.close();
    unlinkSync(join(cfg.dir, 'clean'));
    const device = cfg.files[0]!;
    const deviceBytes = statSync(device).size;
    out.caches_dropped = dropCaches();
    t = performance.now();
    ns = await openNamespace(cfg);
    const coldS = (performance.now() - t) / 1000;
    if (ns.openReport.mode !== 'cold' || ns.openReport.records !== records) throw new Error(`cold restart found ${ns.openReport.records} records (${ns.openReport.mode})`);
    out.cold_restart_s = Number(coldS.toFixed(3));
    out.cold_restart_mb_per_s = Math.round(ns.openReport.bytesRead / (1024 * 1024) / coldS);
    await ns.close();
    dropCaches();
    out.disk_read_mb_per_s = Math.round(sequentialReadMbPerS(device));
    out.cold_vs_disk_pct = Math.round((Number(out.cold_restart_mb_per_s) * 100) / Number(out.disk_read_mb_per_s));
    console.log(
      `cold restart: ${out.cold_restart_s} s, ${out.cold_restart_mb_per_s} MB/s over ${(ns.openReport.bytesRead / 1048576).toFixed(0)} MB` +
        ` vs raw sequential read ${out.disk_read_mb_per_s} MB/s of the ${(deviceBytes / 1048576).toFixed(0)} MB device = ${out.cold_vs_disk_pct}%` +
        `   (goal >= ${GOALS.coldVsDiskPct}%; page cache ${out.caches_dropped ? 'dropped' : 'NOT dropped: both figures are from memory'})`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (existsSync(dir)) console.error(`could not remove ${dir}`);
  }
  console.log(JSON.stringify(out));
}
