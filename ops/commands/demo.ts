/**
 * `ferry demo`: two sites replicating through the embedded broker under a steady workload, a
 * live terminal view and a lag dashboard; Ctrl-C (or --duration-s) stops the workload, waits for
 * B to catch up and verifies A against B (ops/demo.ts).
 * Exit status: 0 the sites are equal, 1 they differ, 2 the demo could not run.
 */
import type { Command } from 'commander';
import {
  DEMO_BASE_PORT_DEFAULT,
  DEMO_DASHBOARD_PORT_DEFAULT,
  DEMO_DATA_DEFAULT,
  DEMO_NODES_DEFAULT,
  DEMO_NODES_MAX,
  DEMO_RATE_PER_S_DEFAULT,
  DemoError,
  EXIT_GRACE_MS,
  runDemo,
  type DemoOptions,
} from '../demo.js';
import { onShutdownSignal } from '../signals.js';
import { EXIT_ERROR } from '../util.js';

export interface DemoCliOptions {
  data: string;
  rate: string;
  durationS?: string;
  basePort: string;
  dashboardPort: string;
  nodes: string;
  fresh?: boolean;
}

function intOption(name: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new DemoError('USAGE', `--${name} must be an integer from ${min} to ${max}, got "${v}"`);
  return Number(v);
}

export function parseDemoOptions(o: DemoCliOptions): DemoOptions {
  const opts: DemoOptions = {
    data: o.data,
    ratePerS: intOption('rate', o.rate, 1, 1_000_000),
    basePort: intOption('base-port', o.basePort, 1, 65_532),
    dashboardPort: intOption('dashboard-port', o.dashboardPort, 0, 65_535),
    fresh: o.fresh === true,
    nodes: intOption('nodes', o.nodes, 1, DEMO_NODES_MAX),
  };
  if (o.durationS !== undefined) opts.durationS = intOption('duration-s', o.durationS, 1, 365 * 86_400);
  return opts;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('run two sites, the broker, a receiver and a workload; show lag live; Ctrl-C verifies A against B (exit 0 equal)')
    .option('--data <dir>', 'data directory of the demo (broker, both sites, logs)', DEMO_DATA_DEFAULT)
    .option('--rate <ops/s>', 'workload operations per second on site A', String(DEMO_RATE_PER_S_DEFAULT))
    .option('--duration-s <s>', 'stop by itself after this many seconds (default: run until Ctrl-C)')
    .option('--base-port <port>', 'site A on this port, B +1, broker +2, receiver +3 (a taken port is replaced by a free one)', String(DEMO_BASE_PORT_DEFAULT))
    .option('--dashboard-port <port>', 'lag dashboard HTTP port (a free one when taken)', String(DEMO_DASHBOARD_PORT_DEFAULT))
    .option('--nodes <n>', `nodes per site: each site a cluster of n nodes (1 = a lone node each, at most ${DEMO_NODES_MAX})`, String(DEMO_NODES_DEFAULT))
    .option('--fresh', 'delete the data directory first')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_ERROR))
    .action(async (o: DemoCliOptions) => {
      let opts: DemoOptions;
      try {
        opts = parseDemoOptions(o);
      } catch (err) {
        process.stderr.write(`ferry demo: ${(err as Error).message}\n`);
        process.exit(EXIT_ERROR);
      }
      const code = await runDemo(opts, {
        out: (s) => process.stdout.write(s),
        err: (s) => process.stderr.write(s),
        tty: process.stdout.isTTY === true,
        onSignal: (handler) => onShutdownSignal(() => handler()),
      });
      process.exitCode = code;
      // Everything is closed; should a handle linger, do not hang the terminal.
      setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
    });
}
