/**
 * `ferry cluster [--node host:port] [--json]`: the members of the cluster the given node belongs
 * to, each node's master and replica partition counts, and whether every member reports the
 * same cluster key (each member is asked directly; one that cannot be reached is shown so).
 * With --watch the report is printed again every interval (JSON: one line per report) until
 * interrupted. Exit status: 0 when every member agrees, 1 when they disagree or one is unreachable, 2 on
 * usage or when the given node cannot be reached.
 */
import type { Command } from 'commander';
import type { ClusterDescription } from '../../store/index.js';
import { OpsError, endpointText, errorText, formatTable, parseHostPort, sleep, withNode, type Endpoint } from '../util.js';

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
    return [m.nodeId, n?.address ?? '-', m.rackId === undefined ? '-' : String(m.rackId), m.master, m.replica, seen];
  });
  return `${head}\n${formatTable(['NODE', 'ADDRESS', 'RACK', 'MASTERS', 'REPLICAS', 'REPORTS'], rows)}\n`;
}

export function register(program: Command): void {
  program
    .command('cluster')
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
}
