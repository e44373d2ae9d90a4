/**
 * `npm run sim -- --seed N [--ops K] [--seeds M] [--nodes C [--xdr]] [--scenario S] [--no-faults] [--ship-expirations] [--verbose]`:
 * runs seeds N..N+M-1, prints each seed first, then a summary line; a failing seed prints its
 * failures and the command that replays it. Exit code 1 when any seed failed.
 *
 * `--nodes C` (2..8) runs the cluster simulation (sim/cluster-run.ts): one site of C nodes,
 * each the real node assembly, with crashes, partitions (also partial) and message loss.
 * With `--xdr` as well, site A's cluster also ships through Kafka and the receiver to a site B
 * cluster of the same size, and B must end equal to A. Without `--nodes`, the XDR simulation
 * (sim/run.ts): site A, Kafka, the receiver and site B, one node each.
 */
import { parseArgs } from 'node:util';
import { CLUSTER_NODES_MAX, CLUSTER_SCENARIOS, runClusterSimulation, type ClusterScenario } from './cluster-run.js';
import { runSimulation } from './run.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    ops: { type: 'string', default: '400' },
    seeds: { type: 'string', default: '1' },
    'no-faults': { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    'ship-expirations': { type: 'boolean', default: false },
    nodes: { type: 'string' },
    scenario: { type: 'string', default: 'random' },
    xdr: { type: 'boolean', default: false },
  },
});

function intArg(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer >= ${min}, got ${v}\n`);
    process.exit(2);
  }
  return n;
}

// The only place the simulator reads real randomness: a seed when none is given.
const first = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : intArg('seed', values.seed, 0);
const ops = intArg('ops', values.ops, 1);
const seeds = intArg('seeds', values.seeds, 1);
const nodes = values.nodes === undefined ? undefined : intArg('nodes', values.nodes, 2);
if (nodes !== undefined && nodes > CLUSTER_NODES_MAX) {
  process.stderr.write(`--nodes must be at most ${CLUSTER_NODES_MAX}, got ${nodes}\n`);
  process.exit(2);
}
const scenario = values.scenario as ClusterScenario;
if (!(CLUSTER_SCENARIOS as readonly string[]).includes(scenario)) {
  process.stderr.write(`--scenario must be one of ${CLUSTER_SCENARIOS.join(', ')}, got ${scenario}\n`);
  process.exit(2);
}
if (nodes === undefined && values.xdr) {
  process.stderr.write('--xdr needs --nodes (without it the simulation is the one-node-per-site XDR run already)\n');
  process.exit(2);
}
if (nodes === undefined && scenario !== 'random') {
  process.stderr.write('--scenario needs --nodes (it is a cluster scenario)\n');
  process.exit(2);
}
let failed = 0;
for (let seed = first; seed < first + seeds; seed++) {
  process.stdout.write(`seed ${seed}: `);
  const started = process.hrtime.bigint();
  const log = values.verbose ? (line: string): void => void process.stderr.write(`  ${line}\n`) : undefined;
  const r =
    nodes === undefined
      ? await runSimulation({ seed, ops, faults: !values['no-faults'], shipExpirations: values['ship-expirations'], ...(log ? { log } : {}) })
      : await runClusterSimulation({ seed, ops, nodes, scenario, xdr: values.xdr, faults: !values['no-faults'], ...(log ? { log } : {}) });
  const ms = Number((process.hrtime.bigint() - started) / 1_000_000n);
  const s = Object.entries(r.summary).map(([k, v]) => `${k}=${v}`).join(' ');
  process.stdout.write(`${r.ok ? 'ok' : 'FAILED'} trace=${r.traceHash} wall=${ms}ms ${s}\n`);
  if (!r.ok) {
    failed++;
    for (const f of r.failures.slice(0, 20)) process.stdout.write(`  ${f}\n`);
    const cluster = nodes === undefined ? '' : ` --nodes ${nodes}${scenario !== 'random' ? ` --scenario ${scenario}` : ''}${values.xdr ? ' --xdr' : ''}`;
    process.stdout.write(`  replay: npm run sim -- --seed ${seed} --ops ${ops}${cluster}${values['no-faults'] ? ' --no-faults' : ''}${values['ship-expirations'] ? ' --ship-expirations' : ''}\n`);
  }
}
if (seeds > 1) process.stdout.write(`${seeds - failed}/${seeds} seeds ok\n`);
process.exit(failed > 0 ? 1 : 0);
