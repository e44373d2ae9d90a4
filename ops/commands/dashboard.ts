/**
 * `ferry dashboard --site A=host:port[,host:port] --site B=host:port [--receiver URL]...`: the
 * lag dashboard for any deployment (ops/deployment-monitor.ts, ops/deployment-dashboard.html):
 * per site, node, destination and partition behind, and per receiver applied, conflicts, dead
 * letters and consumer lag, polled every --interval-ms. Prints `ferry dashboard on <url>` once
 * serving; Ctrl-C stops it. Exit status: 0 stopped, 2 usage error or the port is taken.
 */
import type { Command } from 'commander';
import { startDashboard } from '../dashboard.js';
import { DeploymentMonitor, parseSiteOption, type SiteTarget } from '../deployment-monitor.js';
import { onShutdownSignal } from '../signals.js';
import { EXIT_ERROR, EXIT_OK, OpsError, REQUEST_TIMEOUT_MS_DEFAULT, errorText, parseBaseUrl, parseCount, sleep } from '../util.js';

const PAGE = new URL('../deployment-dashboard.html', import.meta.url);
const INTERVAL_MS_MIN = 200;
const INTERVAL_MS_DEFAULT = 1000;
const PORT_DEFAULT = 8080;

export interface DashboardCliOptions {
  site: string[];
  receiver: string[];
  host: string;
  port: string;
  intervalMs: string;
  timeoutMs: string;
}

export async function runDashboard(o: DashboardCliOptions): Promise<number> {
  let sites: SiteTarget[];
  let receivers: string[];
  let intervalMs: number;
  let port: number;
  try {
    if (o.site.length === 0) throw new OpsError('USAGE', 'name at least one --site NAME=host:port');
    sites = o.site.map(parseSiteOption);
    receivers = o.receiver.map((r) => parseBaseUrl(r, '--receiver'));
    intervalMs = Math.max(INTERVAL_MS_MIN, parseCount(o.intervalMs, '--interval-ms'));
    port = parseCount(o.port, '--port');
    if (port > 65535) throw new OpsError('USAGE', `--port must be 0..65535, got ${port}`);
  } catch (err) {
    process.stderr.write(`ferry dashboard: ${errorText(err)}\n`);
    return EXIT_ERROR;
  }
  const monitor = new DeploymentMonitor(sites, receivers, parseCount(o.timeoutMs, '--timeout-ms'));
  let dashboard;
  try {
    dashboard = await startDashboard({ host: o.host, port, state: () => monitor.state(), page: PAGE });
  } catch (err) {
    process.stderr.write(`ferry dashboard: cannot listen on ${o.host}:${port}: ${errorText(err)}\n`);
    monitor.close();
    return EXIT_ERROR;
  }
  process.stdout.write(`ferry dashboard on ${dashboard.url}\n`);
  let stopping = false;
  const off = onShutdownSignal(() => {
    stopping = true;
  });
  try {
    while (!stopping) {
      await monitor.poll();
      for (let waited = 0; waited < intervalMs && !stopping; waited += 50) await sleep(50);
    }
  } finally {
    off();
    monitor.close();
    await dashboard.close();
  }
  return EXIT_OK;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function register(program: Command): void {
  program
    .command('dashboard')
    .description('serve the replication lag dashboard for any deployment (sites, nodes, partitions, receivers)')
    .option('--site <NAME=host:port,...>', 'a site and its nodes (repeat per site)', collect, [] as string[])
    .option('--receiver <url>', 'a receiver admin endpoint, http://host:port (repeatable)', collect, [] as string[])
    .option('--host <addr>', 'listen address', '127.0.0.1')
    .option('--port <n>', 'listen port (0 = any free port)', String(PORT_DEFAULT))
    .option('--interval-ms <ms>', 'poll interval', String(INTERVAL_MS_DEFAULT))
    .option('--timeout-ms <ms>', 'per-request timeout', String(REQUEST_TIMEOUT_MS_DEFAULT))
    .action(async (o: DashboardCliOptions) => {
      process.exitCode = await runDashboard(o);
    });
}
