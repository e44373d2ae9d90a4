/**
 * `ferry lag --node host:port | --site host:port [--receiver URL] [--partitions] [--json]
 * [--watch]`: replication lag per destination and namespace of one node (ops/lag.ts), or of
 * every node of the site (cluster) that node belongs to, with a site total (ops/site-lag.ts). --json prints one JSON object per refresh on
 * one line; --watch refreshes (in place on a terminal) until Ctrl-C.
 * Exit status: 0 shown, 2 usage error or a process that cannot be reached.
 */
import type { Command } from 'commander';
import { LagSource, formatLagReport, type LagReport } from '../lag.js';
import { SiteLagSource, formatSiteLagReport, type SiteLagReport } from '../site-lag.js';
import { onShutdownSignal } from '../signals.js';
import {
  EXIT_ERROR,
  EXIT_OK,
  OpsError,
  REQUEST_TIMEOUT_MS_DEFAULT,
  errorText,
  parseBaseUrl,
  parseCount,
  parseHostPort,
  sleep,
} from '../util.js';
import { processIo, type CliIo } from './cli-io.js';

/** Shortest refresh interval accepted by --watch. */
const WATCH_INTERVAL_MS_MIN = 100;
const WATCH_INTERVAL_MS_DEFAULT = 1000;
/** Terminal: cursor home, clear screen. */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

export interface LagCliOptions {
  node?: string;
  site?: string;
  receiver?: string;
  partitions?: boolean;
  json?: boolean;
  watch?: boolean;
  intervalMs: string;
  timeoutMs: string;
}

export type LagIo = CliIo;

const defaultIo = (): LagIo => processIo('stdout');

export async function runLag(o: LagCliOptions, io: LagIo = defaultIo()): Promise<number> {
  const ac = new AbortController();
  const off = onShutdownSignal(() => ac.abort());
  let source: { collect(): Promise<LagReport | SiteLagReport>; close(): void } | undefined;
  try {
    if (!o.node && !o.site) throw new OpsError('USAGE', '--node host:port or --site host:port is required (a node of the shipping site)');
    if (o.node && o.site) throw new OpsError('USAGE', 'give --node (one node) or --site (every node of its cluster), not both');
    const receiver = o.receiver ? parseBaseUrl(o.receiver, '--receiver') : undefined;
    const intervalMs = Math.max(WATCH_INTERVAL_MS_MIN, parseCount(o.intervalMs, '--interval-ms'));
    const timeoutMs = parseCount(o.timeoutMs, '--timeout-ms');
    source = o.site
      ? new SiteLagSource(parseHostPort(o.site, '--site'), receiver, o.partitions === true, timeoutMs)
      : new LagSource(parseHostPort(o.node!, '--node'), receiver, o.partitions === true, timeoutMs);
    const format = (r: LagReport | SiteLagReport): string => ('total' in r ? formatSiteLagReport(r) : formatLagReport(r));
    if (!o.watch) {
      const r = await source.collect();
      io.out(o.json ? `${JSON.stringify(r)}\n` : `${format(r)}\n`);
      return EXIT_OK;
    }
    // Watch: a failed refresh is shown and retried; the exit status tells whether the last one worked.
    let status = EXIT_OK;
    while (!ac.signal.aborted) {
      const started = Date.now();
      try {
        const r = await source.collect();
        status = EXIT_OK;
        if (o.json) io.out(`${JSON.stringify(r)}\n`);
        else io.out(`${io.tty ? CLEAR_SCREEN : ''}${format(r)}\n${io.tty ? '\n(Ctrl-C to stop)\n' : '\n'}`);
      } catch (err) {
        if (err instanceof OpsError && err.code === 'USAGE') throw err;
        status = EXIT_ERROR;
        const code = err instanceof OpsError ? err.code : 'ERROR';
        if (o.json) io.out(`${JSON.stringify({ at: Date.now(), error: { code, message: errorText(err) } })}\n`);
        else io.out(`${io.tty ? CLEAR_SCREEN : ''}${new Date().toISOString()} cannot refresh: ${errorText(err)}\n`);
      }
      await sleep(Math.max(0, intervalMs - (Date.now() - started)), ac.signal);
    }
    return status;
  } catch (err) {
    const code = err instanceof OpsError ? err.code : 'ERROR';
    if (o.json) io.out(`${JSON.stringify({ error: { code, message: errorText(err) } })}\n`);
    io.err(`ferry lag: ${errorText(err)}\n`);
    return EXIT_ERROR;
  } finally {
    source?.close();
    off();
  }
}

export function register(program: Command): void {
  program
    .command('lag')
    .description('replication lag per destination and namespace: shipper (--node) and receiver (--receiver)')
    .option('--node <host:port>', 'a node of the shipping (source) site: that node only')
    .option('--site <host:port>', 'a node of the shipping site: every node of its cluster, with a site total')
    .option('--receiver <url>', 'receiver admin endpoint, http://host:port (its metrics-port)')
    .option('--partitions', 'add a row per partition that is behind or re-scanning')
    .option('--json', 'one JSON object per refresh, one line each')
    .option('-w, --watch', 'refresh until Ctrl-C')
    .option('--interval-ms <ms>', 'refresh interval with --watch', String(WATCH_INTERVAL_MS_DEFAULT))
    .option('--timeout-ms <ms>', 'per-request timeout', String(REQUEST_TIMEOUT_MS_DEFAULT))
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_ERROR))
    .action(async (o: LagCliOptions) => {
      process.exitCode = await runLag(o);
    });
}
