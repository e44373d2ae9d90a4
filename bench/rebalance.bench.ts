/**
 * `npm run bench -- rebalance [--nodes 4] [--records 1000000] [--rate 2000] [--away-s 20] [--quiesce] [--chart docs/rebalance.png]`
 *
 * The incident this product exists to prevent, scaled to one machine: a cluster of `--nodes`
 * ferry nodes (replication factor 2) holding `--records` 100-byte records under steady writes
 * (`--rate` per second, official client); one node is stopped (SIGTERM), stays away `--away-s`
 * seconds while writes go on, and is started again on its data (warm). Sampled every
 * SAMPLE_MS from every node: stored bytes (namespace data_used_bytes), objects, migrations.
 *
 * Figures (goals from issue 10):
 * - `peak_vs_share`: the restarted node's peak stored bytes from its restart until the cluster
 *   settles, over its stored bytes once settled (goal <= 1.1; the incident was about 2.2).
 * - `max_node_peak_vs_share`: the same bound for every node, over the largest of its shares
 *   before the stop, while the node is away (the leave is a rebalance too) and after the return
 *   (the invariant: <= 1.1).
 * - `migrated_vs_changed`: records migrated into the returning node (its migrate_records_received)
 *   over the distinct keys written while it was away (goal <= 1.2).
 * - `rebalance_s` (restart to settled), client `p99_ms` during the rebalance next to before it.
 * `--quiesce`: the node is stopped as `ferry cluster rolling-restart` stops one (quiesce, wait for a
 * stable cluster and for clients to leave it), so `write_errors` is the rolling restart's figure
 * (goal 0); without it the stop is abrupt for clients (the incident's plain restart).
 * The chart of stored bytes per node over time goes to `--chart` (PNG, and the SVG beside it).
 * Ends with one JSON line {"bench":"rebalance", ...}.
 */
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile, r2, r3, stopChild } from './harness.js';
import { IN_FLIGHT, SETTLE_TIMEOUT_MS, connect, loadRecords, info, newFerryNode, settled, startFerry, stats, waitUntil, type FerryNodeProc } from './ferry-cluster.js';
import { lineChartSvg, writeChart, type Series } from './line-chart.js';
import { parseKv } from '../ops/util.js';
import { BenchArgs } from './args.js';
import { membersOf, quiesceAndWait, waitClientsGone } from '../ops/rolling-restart.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NS = 'test';
const SET = 'rb';
const VALUE_BYTES = 100;
const SAMPLE_MS = 500;
const BEFORE_S = 10;
const GOAL_PEAK_VS_SHARE = 1.1;
const GOAL_MIGRATED_VS_CHANGED = 1.2;

interface Sample {
  tS: number;
  node: number;
  bytes: number;
  objects: number;
  migrateReceived: number | undefined;
  remaining: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Steady writes at `rate`/s: latencies by phase, and the distinct keys written per phase. */
class SteadyWriter {
  phase = 'before';
  readonly latencies = new Map<string, number[]>();
  readonly keysByPhase = new Map<string, Set<number>>();
  errors = 0;
  #stop = false;
  #done: Promise<void> | undefined;
  constructor(
    private readonly client: Any,
    private readonly Aerospike: Any,
    private readonly records: number,
    private readonly rate: number,
  ) {}

  start(): void {
    const value = Buffer.alloc(VALUE_BYTES, 0x63).toString('latin1');
    const start = performance.now();
    let issued = 0;
    const pending = new Set<Promise<void>>();
    this.#done = (async () => {
      while (!this.#stop) {
        const due = Math.floor(((performance.now() - start) * this.rate) / 1000);
        while (issued < due && pending.size < IN_FLIGHT) {
          issued++;
          const k = Math.floor(Math.random() * this.records);
          const phase = this.phase;
          const t0 = performance.now();
          const p: Promise<void> = this.client.put(new this.Aerospike.Key(NS, SET, k), { v: value }).then(
            () => {
              let l = this.latencies.get(phase);
              if (!l) this.latencies.set(phase, (l = []));
              l.push(performance.now() - t0);
              let s = this.keysByPhase.get(phase);
              if (!s) this.keysByPhase.set(phase, (s = new Set()));
              s.add(k);
            },
            () => void this.errors++,
          );
          const tracked = p.finally(() => pending.delete(tracked));
          pending.add(tracked);
        }
        await sleep(1);
      }
      await Promise.all(pending);
    })();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }

  p99(phase: string): number {
    return percentile(Float64Array.from(this.latencies.get(phase) ?? []).sort(), 0.99);
  }
}

export async function main(args: string[]): Promise<void> {
  const opts = new BenchArgs(args);
  const chartPath = path.resolve(ROOT, opts.str('chart', 'docs/rebalance.png'));
  const nodeCount = opts.num('nodes', 4);
  const records = opts.num('records', 1_000_000);
  const rate = opts.num('rate', 2000);
  const awayS = opts.num('away-s', 20);
  const quiesce = opts.has('quiesce');
  const Aerospike: Any = createRequire(import.meta.url)('aerospike');
  console.log(`rebalance bench: ${nodeCount} nodes, replication factor 2, ${records} records of ${VALUE_BYTES} bytes, steady writes at ${rate}/s, one node away ${awayS} s`);

  const nodes: FerryNodeProc[] = [];
  const samples: Sample[] = [];
  const t0 = performance.now();
  const now = (): number => (performance.now() - t0) / 1000;
  let sampling = true;
  const markers: Array<{ x: number; label: string }> = [];
  let client: Any;
  let writer: SteadyWriter | undefined;
  try {
    nodes.push(await newFerryNode());
    for (let i = 1; i < nodeCount; i++) nodes.push(await newFerryNode(nodes[0]!.hbPort));
    await settled(nodes, nodeCount);
    client = await connect(Aerospike, nodes[0]!.port);
    await waitUntil(async () => (client.getNodes() as unknown[]).length === nodeCount, SETTLE_TIMEOUT_MS, 'the client to see every node');

    // Samples of every running node (a stopped one is skipped).
    const sampler = (async () => {
      while (sampling) {
        const tS = now();
        await Promise.all(
          nodes.map(async (n, i) => {
            if (n.child.exitCode !== null || n.child.signalCode !== null) return;
            try {
              const ns = parseKv(await info(n.port, `namespace/${NS}`));
              const st = await stats(n.port);
              const mr = st.get('migrate_records_received');
              samples.push({ tS, node: i, bytes: Number(ns.get('data_used_bytes') ?? 0), objects: Number(ns.get('objects') ?? 0), migrateReceived: mr === undefined ? undefined : Number(mr), remaining: Number(st.get('migrate_partitions_remaining') ?? 0) });
            } catch {
              // starting or stopping
            }
          }),
        );
        await sleep(SAMPLE_MS);
      }
    })();

    // Load.
    const loadStart = performance.now();
    await loadRecords(client, Aerospike, NS, SET, records, VALUE_BYTES);
    const loadS = (performance.now() - loadStart) / 1000;
    console.log(`  loaded ${records} records in ${r2(loadS)} s (${Math.round(records / loadS)}/s)`);
    await settled(nodes, nodeCount);

    writer = new SteadyWriter(client, Aerospike, records, rate);
    writer.start();
    await sleep(BEFORE_S * 1000);

    const victimIndex = nodeCount - 1;
    const victim = nodes[victimIndex]!;
    const shareBefore = nodes.map((_, i) => lastBytes(samples, i));
    if (quiesce) {
      const members = await membersOf({ host: '127.0.0.1', port: victim.port });
      const self = members.find((m) => m.address.port === victim.port)!;
      markers.push({ x: now(), label: 'quiesce' });
      writer.phase = 'quiesce';
      await quiesceAndWait(self, members, SETTLE_TIMEOUT_MS);
      const drained = await waitClientsGone(self);
      console.log(`  quiesced node ${self.nodeId}; ${drained.quiet ? 'no client command for' : 'clients still sending after'} ${drained.waitedMs} ms`);
    }
    writer.phase = 'away';
    markers.push({ x: now(), label: 'node stopped' });
    await stopChild(victim.child);
    await sleep(awayS * 1000);

    // The leave is a rebalance of its own: the others' share while the node is away is the "after" of that one.
    const shareAway = nodes.map((_, i) => (i === victimIndex ? 0 : lastBytes(samples, i)));
    writer.phase = 'rebalance';
    const restartAt = now();
    markers.push({ x: restartAt, label: 'restarted' });
    const restartStart = performance.now();
    const back = await startFerry(victim.args, victim.port, victim.dataDir, victim.hbPort);
    nodes[victimIndex] = back;
    await settled(nodes, nodeCount);
    const rebalanceS = (performance.now() - restartStart) / 1000;
    const settledAt = now();
    markers.push({ x: settledAt, label: 'settled' });
    writer.phase = 'after';
    await sleep(3 * SAMPLE_MS);
    await writer.stop();
    sampling = false;
    await sampler;

    const shareAfter = nodes.map((_, i) => lastBytes(samples, i));
    const peakOf = (i: number, from: number): number => Math.max(0, ...samples.filter((s) => s.node === i && s.tS >= from && s.tS <= settledAt + 1).map((s) => s.bytes));
    const victimPeak = peakOf(victimIndex, restartAt);
    const peakVsShare = shareAfter[victimIndex]! > 0 ? victimPeak / shareAfter[victimIndex]! : Number.NaN;
    const nodePeaks = nodes.map((_, i) => peakOf(i, markers[0]!.x) / Math.max(shareBefore[i]!, shareAway[i]!, shareAfter[i]!, 1));
    const received = samples.filter((s) => s.node === victimIndex && s.tS >= restartAt && s.migrateReceived !== undefined).map((s) => s.migrateReceived!);
    const migratedIn = received.length > 0 ? Math.max(...received) - Math.min(...received) : undefined;
    const changed = writer.keysByPhase.get('away')?.size ?? 0;
    const out: Record<string, unknown> = {
      bench: 'rebalance',
      nodes: nodeCount,
      records,
      write_rate: rate,
      away_s: awayS,
      quiesce,
      load_s: r2(loadS),
      peak_vs_share: r2(peakVsShare),
      max_node_peak_vs_share: r2(Math.max(...nodePeaks)),
      migrated_into_returning: migratedIn ?? null,
      changed_while_away: changed,
      migrated_vs_changed: migratedIn === undefined || changed === 0 ? null : r2(migratedIn / changed),
      rebalance_s: r2(rebalanceS),
      p99_ms_before: r3(writer.p99('before')),
      p99_ms_rebalance: r3(writer.p99('rebalance')),
      p99_ms_away: r3(writer.p99('away')),
      write_errors: writer.errors,
    };
    console.log(`  stored bytes per node before the stop: ${shareBefore.join(', ')}; after settling: ${shareAfter.join(', ')}`);
    console.log(`  returning node: peak ${victimPeak} bytes during the rebalance, final share ${shareAfter[victimIndex]}: peak_vs_share ${out['peak_vs_share']} (goal <= ${GOAL_PEAK_VS_SHARE})`);
    console.log(`  while away, the others held: ${shareAway.filter((_, i) => i !== victimIndex).join(', ')}`);
    console.log(`  every node: peak over the largest of its shares (before the stop, while away, after the return), at most ${out['max_node_peak_vs_share']} (goal <= ${GOAL_PEAK_VS_SHARE})`);
    console.log(`  migrated into the returning node: ${migratedIn ?? 'not reported (no migrate_records_received statistic)'}; distinct keys written while away: ${changed}; migrated_vs_changed ${out['migrated_vs_changed'] ?? 'n/a'} (goal <= ${GOAL_MIGRATED_VS_CHANGED})`);
    console.log(`  rebalance (restart to settled): ${out['rebalance_s']} s; write p99 before ${out['p99_ms_before']} ms, while away ${out['p99_ms_away']} ms, during the rebalance ${out['p99_ms_rebalance']} ms; write errors ${writer.errors}`);

    const series: Series[] = nodes.map((_, i) => ({ name: `node ${i + 1}${i === victimIndex ? ' (restarted)' : ''}`, points: samples.filter((s) => s.node === i).map((s) => [r2(s.tS), s.bytes] as [number, number]) }));
    const svg = lineChartSvg(series, { title: `Stored bytes per node: ${nodeCount} nodes, ${records} records, one node away ${awayS} s`, xLabel: 'seconds since start', yLabel: 'stored bytes (data_used_bytes)', markers });
    const chartErr = await writeChart(svg, chartPath);
    console.log(chartErr ? `  chart: ${chartErr}` : `  chart: ${path.relative(ROOT, chartPath)}`);
    console.log(JSON.stringify(out));
  } finally {
    sampling = false;
    if (writer) await writer.stop().catch(() => {});
    if (client) await client.close();
    await Promise.all(nodes.map((n) => stopChild(n.child)));
    for (const n of nodes) rmSync(n.dataDir, { recursive: true, force: true });
  }
}

function lastBytes(samples: Sample[], node: number): number {
  for (let i = samples.length - 1; i >= 0; i--) if (samples[i]!.node === node) return samples[i]!.bytes;
  return 0;
}
