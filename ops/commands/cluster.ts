/**
 * `ferry cluster [--node host:port] [--json]`: the members of the cluster the given node belongs
 * to, each node's master and replica partition counts, and whether every member reports the
 * same cluster key (each member is asked directly; one that cannot be reached is shown so).
 * With --watch the report is printed again every interval (JSON: one line per report) until
 * interrupted. Exit status: 0 when every member agrees, 1 when they disagree or one is unreachable, 2 on
 * usage or when the given node cannot be reached.
 *
 * `ferry cluster quiesce --node host:port [--undo]`: quiesces the node (or undoes it) and waits
 * until the cluster is stable again. `ferry cluster rolling-restart --node host:port [--exec cmd]`:
 * restarts every member in turn (ops/rolling-restart.ts), running `cmd` (with {node}, {host},
 * {port} replaced) for each, or, without --exec, asking the operator to restart each node and
 * waiting for it to come back. Exit status 0 when done, 1 when a step timed out or failed, 2 on
 * usage or a node that cannot be reached.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import type { ClusterDescription } from '../../store/index.js';
import { OpsError, endpointText, errorText, formatTable, parseHostPort, sleep, withNode, type Endpoint } from '../util.js';
import { membersOf, quiesceAndWait, quiesceNode, rollingRestart, STEP_TIMEOUT_MS_DEFAULT, waitClusterStable, type RollingNode } from '../rolling-restart.js';

export const CLUSTER_TIMEOUT_MS_DEFAULT = 5000;
/** --watch without a value: one report every this many ms. */
export const WATCH_MS_DEFAULT = 2000;
const EXIT_OK = 0;
const EXIT_DISAGREE = 1;
const EXIT_USAGE = 2;

export interface ClusterReport {
  /** The view of the node asked first. */
  view: ClusterDescription;
  /** Per member: what it reports itself, or why it could not be asked. */
  nodes: Array<{ nodeId: string; address?: string; view?: ClusterDescription; error?: string }>;
  agreed: boolean;
  /** Partitions still to migrate, summed over the members that answered. */
  migrationsRemaining: number;
}

/** A node's own view (info `ferry-cluster`). */
export async function describeNode(endpoint: Endpoint, timeoutMs: number): Promise<ClusterDescription> {
  return describe(endpoint, timeoutMs);
}

async function describe(endpoint: Endpoint, timeoutMs: number): Promise<ClusterDescription> {
  const text = await withNode(endpoint, timeoutMs, (n) => n.info('ferry-cluster'));
  try {
    return JSON.parse(text) as ClusterDescription;
  } catch {
    throw new OpsError('REFUSED', `node ${endpointText(endpoint)}: ferry-cluster answer is not JSON: ${text.slice(0, 200)}`);
  }
}

export async function clusterReport(endpoint: Endpoint, timeoutMs: number): Promise<ClusterReport> {
  const view = await describe(endpoint, timeoutMs);
  const nodes = await Promise.all(
    view.members.map(async (m) => {
      if (!m.service) return { nodeId: m.nodeId, error: 'no service address known' };
      const address = endpointText(m.service);
      try {
        return { nodeId: m.nodeId, address, view: m.nodeId === view.nodeId ? view : await describe(m.service, timeoutMs) };
      } catch (err) {
        return { nodeId: m.nodeId, address, error: errorText(err) };
      }
    }),
  );
  const agreed = nodes.every((n) => n.view !== undefined && n.view.clusterKey === view.clusterKey && n.view.stable);
  const migrationsRemaining = nodes.reduce((s, n) => s + (n.view?.migrationsRemaining ?? 0), 0);
  return { view, nodes, agreed, migrationsRemaining };
}

export function formatClusterReport(r: ClusterReport): string {
  const v = r.view;
  const head = `cluster ${v.clusterName}  key ${v.clusterKey}  size ${v.clusterSize}  replication-factor ${v.replicationFactor}  migrations remaining ${r.migrationsRemaining}  ${r.agreed ? 'all members agree' : 'MEMBERS DISAGREE'}`;
  const rows = v.members.map((m) => {
    const n = r.nodes.find((x) => x.nodeId === m.nodeId);
    const seen = n?.view
      ? `${n.view.clusterKey}${n.view.clusterKey === v.clusterKey ? '' : ' (differs)'} size ${n.view.clusterSize} migrating ${n.view.migrationsRemaining}`
      : `unreachable: ${n?.error ?? '?'}`;
    const mig = migrationTotals(n?.view);
    const state = m.quiesced || n?.view?.quiesced ? 'QUIESCED' : 'active';
    return [m.nodeId, n?.address ?? '-', m.rackId === undefined ? '-' : String(m.rackId), state, m.master, m.replica, mig ? mig.tx : '-', mig ? mig.rx : '-', mig ? mig.storedBytes : '-', seen];
  });
  return `${head}\n${formatTable(['NODE', 'ADDRESS', 'RACK', 'STATE', 'MASTERS', 'REPLICAS', 'MIGRATE-OUT', 'MIGRATE-IN', 'STORED-BYTES', 'REPORTS'], rows)}\n`;
}

/** A node's partitions to send and to receive and its stored bytes, over its namespaces (undefined from older nodes). */
export function migrationTotals(view: ClusterDescription | undefined): { tx: number; rx: number; storedBytes: number } | undefined {
  if (!view?.migrations) return undefined;
  const out = { tx: 0, rx: 0, storedBytes: 0 };
  for (const m of Object.values(view.migrations)) {
    out.tx += m.tx;
    out.rx += m.rx;
    out.storedBytes += m.storedBytes;
  }
  return out;
}

export function register(program: Command): void {
  const cluster = program
    .command('cluster')
    // `ferry cluster quiesce --node x`: --node belongs to the subcommand, not to `cluster`.
    .enablePositionalOptions()
    .description('show the cluster a node belongs to: members, master/replica partitions per node, agreement')
    .option('--node <host:port>', 'any member (default 127.0.0.1:3000)', '127.0.0.1:3000')
    .option('--json', 'print the report as JSON')
    .option('--timeout-ms <ms>', 'connect and request timeout per node', String(CLUSTER_TIMEOUT_MS_DEFAULT))
    .option('--watch [ms]', 'print the report again every ms (default 2000) until interrupted')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
    .action(async (o: { node: string; json?: boolean; timeoutMs: string; watch?: string | boolean }) => {
      try {
        const timeoutMs = Number(o.timeoutMs);
        if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new OpsError('USAGE', `bad --timeout-ms "${o.timeoutMs}"`);
        const watchMs = o.watch === undefined ? 0 : o.watch === true ? WATCH_MS_DEFAULT : Number(o.watch);
        if (!Number.isInteger(watchMs) || watchMs < 0) throw new OpsError('USAGE', `bad --watch "${String(o.watch)}"`);
        const endpoint = parseHostPort(o.node, '--node');
        for (;;) {
          let r: ClusterReport;
          try {
            r = await clusterReport(endpoint, timeoutMs);
          } catch (err) {
            if (watchMs === 0) throw err;
            process.stderr.write(`ferry cluster: ${errorText(err)}\n`); // keep watching
            await sleep(watchMs);
            continue;
          }
          process.stdout.write(o.json ? `${JSON.stringify(r, null, watchMs > 0 ? undefined : 2)}\n` : formatClusterReport(r));
          process.exitCode = r.agreed ? EXIT_OK : EXIT_DISAGREE;
          if (watchMs === 0) return;
          await sleep(watchMs);
          if (!o.json) process.stdout.write('\n');
        }
      } catch (err) {
        process.stderr.write(`ferry cluster: ${errorText(err)}\n`);
        process.exitCode = EXIT_USAGE;
      }
    });
  registerQuiesce(cluster);
  registerRollingRestart(cluster);
}

function stepTimeout(s: string): number {
  const ms = Number(s);
  if (!Number.isInteger(ms) || ms <= 0) throw new OpsError('USAGE', `bad --timeout-ms "${s}"`);
  return ms;
}

/** Exit 2 for usage errors and a node that cannot be reached, 1 for a step that failed or timed out. */
function fail(what: string, err: unknown): void {
  process.stderr.write(`ferry cluster ${what}: ${errorText(err)}\n`);
  const code = err instanceof OpsError ? err.code : undefined;
  process.exitCode = code === 'USAGE' || code === 'UNREACHABLE' ? EXIT_USAGE : EXIT_DISAGREE;
}

function registerQuiesce(cluster: Command): void {
  cluster
    .command('quiesce')
    .description('quiesce a node before restarting it (masters move to its replicas without moving data), or undo it; waits for a stable cluster')
    .requiredOption('--node <host:port>', 'the node to quiesce')
    .option('--undo', 'undo a quiesce')
    .option('--no-wait', 'do not wait for the cluster to be stable')
    .option('--timeout-ms <ms>', 'bound of the wait', String(STEP_TIMEOUT_MS_DEFAULT))
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
    .action(async (o: { node: string; undo?: boolean; wait: boolean; timeoutMs: string }) => {
      try {
        const endpoint = parseHostPort(o.node, '--node');
        const timeoutMs = stepTimeout(o.timeoutMs);
        const nodes = await membersOf(endpoint);
        const self = await withNode(endpoint, CLUSTER_TIMEOUT_MS_DEFAULT, (n) => n.info('node'));
        const node: RollingNode = { nodeId: self, address: endpoint };
        if (!o.wait) await quiesceNode(endpoint, o.undo === true);
        else if (o.undo) {
          await quiesceNode(endpoint, true);
          await waitClusterStable(nodes, timeoutMs);
        } else await quiesceAndWait(node, nodes, timeoutMs);
        process.stdout.write(`node ${self} (${endpointText(endpoint)}) ${o.undo ? 'no longer quiesced' : 'quiesced'}${o.wait ? `; cluster of ${nodes.length} stable` : ''}\n`);
      } catch (err) {
        fail('quiesce', err);
      }
    });
}

/** Runs the operator's restart command for one node through the shell; rejects on a non-zero exit. */
function runRestart(template: string, node: RollingNode): Promise<void> {
  const cmd = template.replaceAll('{node}', node.nodeId).replaceAll('{host}', node.address.host).replaceAll('{port}', String(node.address.port));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, { shell: true, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new OpsError('REFUSED', `restart command for ${node.nodeId} "${cmd}" exited ${code ?? signal}`))));
  });
}

function registerRollingRestart(cluster: Command): void {
  cluster
    .command('rolling-restart')
    .description('restart every member in turn: quiesce, wait for a stable cluster, restart (--exec, or the operator), wait for it to rejoin and the cluster to be stable')
    .requiredOption('--node <host:port>', 'any member')
    .option('--exec <command>', 'shell command restarting one node; {node}, {host} and {port} are replaced')
    .option('--timeout-ms <ms>', 'bound of each wait', String(STEP_TIMEOUT_MS_DEFAULT))
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
    .action(async (o: { node: string; exec?: string; timeoutMs: string }) => {
      try {
        const endpoint = parseHostPort(o.node, '--node');
        const stepTimeoutMs = stepTimeout(o.timeoutMs);
        const log = (line: string): void => void process.stdout.write(`${line}\n`);
        const restart = async (n: RollingNode): Promise<void> => {
          if (o.exec !== undefined) return runRestart(o.exec, n);
          log(`restart node ${n.nodeId} at ${endpointText(n.address)} now; waiting for it to come back`);
        };
        const steps = await rollingRestart(endpoint, { restart, stepTimeoutMs, log });
        log(`rolling restart done: ${steps.length} node(s)`);
      } catch (err) {
        fail('rolling-restart', err);
      }
    });
}
