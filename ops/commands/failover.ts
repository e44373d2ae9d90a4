/**
 * `ferry failover --passive host:port[,host:port] --namespace NS [--receiver URL]
 * [--old-active host:port] [--drain-timeout-ms 30000] [--json]`: promotes the passive site
 * (ops/failover.ts) and reports the data-loss window.
 * Exit status: 0 promoted (a drain that did not complete is reported, not an error), 2 usage
 * error, unreachable passive node or receiver, or a refusal.
 */
import type { Command } from 'commander';
import { failover, formatFailover } from '../failover.js';
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
  parseHostPortList,
  parseTime,
} from '../util.js';
import { processIo, type CliIo } from './cli-io.js';

const DRAIN_TIMEOUT_MS_DEFAULT = 30_000;
/** Without a terminal, a progress line at most this often. */
const PROGRESS_LINE_INTERVAL_MS = 2_000;

export interface FailoverCliOptions {
  passive?: string;
  namespace?: string;
  receiver?: string;
  oldActive?: string;
  outageStart?: string;
  drainTimeoutMs: string;
  requestTimeoutMs: string;
  json?: boolean;
}

export type FailoverIo = CliIo;

const defaultIo = (): FailoverIo => processIo('stderr');

export async function runFailover(o: FailoverCliOptions, io: FailoverIo = defaultIo()): Promise<number> {
  const ac = new AbortController();
  const off = onShutdownSignal(() => ac.abort());
  let lastLine = 0;
  try {
    if (!o.passive) throw new OpsError('USAGE', '--passive host:port[,host:port] is required (the nodes of the site to promote)');
    if (!o.namespace) throw new OpsError('USAGE', '--namespace is required');
    const report = await failover({
      passive: parseHostPortList(o.passive, '--passive'),
      namespace: o.namespace,
      ...(o.receiver ? { receiver: parseBaseUrl(o.receiver, '--receiver') } : {}),
      ...(o.oldActive ? { oldActive: parseHostPort(o.oldActive, '--old-active') } : {}),
      ...(o.outageStart ? { outageStartMs: parseTime(o.outageStart, '--outage-start') } : {}),
      drainTimeoutMs: parseCount(o.drainTimeoutMs, '--drain-timeout-ms'),
      requestTimeoutMs: parseCount(o.requestTimeoutMs, '--request-timeout-ms'),
      signal: ac.signal,
      progress: (line) => {
        if (io.tty) io.err(`\r\x1b[K${line}`);
        else if (Date.now() - lastLine >= PROGRESS_LINE_INTERVAL_MS) {
          lastLine = Date.now();
          io.err(`${line}\n`);
        }
      },
    });
    if (io.tty) io.err('\r\x1b[K');
    io.out(o.json ? `${JSON.stringify(report)}\n` : `${formatFailover(report)}\n`);
    return EXIT_OK;
  } catch (err) {
    if (io.tty) io.err('\r\x1b[K');
    const code = err instanceof OpsError ? err.code : 'ERROR';
    if (o.json) io.out(`${JSON.stringify({ error: { code, message: errorText(err) } })}\n`);
    io.err(`ferry failover: ${errorText(err)}\n`);
    return EXIT_ERROR;
  } finally {
    off();
  }
}

export function register(program: Command): void {
  program
    .command('failover')
    .description('promote the passive site: fence the old active, drain the receiver, stop it, lift the fence; report the data-loss window')
    .option('--passive <list>', 'nodes of the site to promote, host:port[,host:port]')
    .option('-n, --namespace <ns>', 'namespace to promote')
    .option('--receiver <url>', 'the receiver applying to the passive site, http://host:port (its metrics-port)')
    .option('--old-active <host:port>', 'a node of the old active site, fenced if reachable')
    .option('--outage-start <time>', 'when the active site stopped taking writes (ISO time or ms): RTO is measured from it')
    .option('--drain-timeout-ms <ms>', 'longest wait for the receiver to apply what is in Kafka', String(DRAIN_TIMEOUT_MS_DEFAULT))
    .option('--request-timeout-ms <ms>', 'per-request timeout', String(REQUEST_TIMEOUT_MS_DEFAULT))
    .option('--json', 'print one JSON object')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_ERROR))
    .action(async (o: FailoverCliOptions) => {
      process.exitCode = await runFailover(o);
    });
}
