/**
 * `ferry verify --a host:port --b host:port`: compares a namespace on two sites (ops/verify.ts)
 * and prints the summary, or one JSON object with --json. Exit status: 0 equal, 1 different,
 * 2 usage, connection or protocol error (or interrupted).
 */
import type { Command } from 'commander';
import { onShutdownSignal } from '../signals.js';
import {
  VERIFY_MAX_LIST_DEFAULT,
  VERIFY_RECHECK_MS_DEFAULT,
  VerifyError,
  formatReport,
  parseEndpoint,
  verifySites,
} from '../verify.js';

export const EXIT_EQUAL = 0;
export const EXIT_DIFFERENT = 1;
export const EXIT_ERROR = 2;

export interface VerifyCliOptions {
  a?: string;
  b?: string;
  namespace: string;
  json?: boolean;
  recheckMs: string;
  maxList: string;
  timeoutMs?: string;
  strictTombstones?: boolean;
}

function intOption(name: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new VerifyError('USAGE', `--${name} must be a non-negative integer, got "${v}"`);
  return Number(v);
}

export async function runVerify(o: VerifyCliOptions, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const ac = new AbortController();
  const off = onShutdownSignal(() => ac.abort());
  try {
    if (!o.a || !o.b) throw new VerifyError('USAGE', 'both --a host:port and --b host:port are required');
    const report = await verifySites({
      a: parseEndpoint(o.a),
      b: parseEndpoint(o.b),
      namespace: o.namespace,
      recheckMs: intOption('recheck-ms', o.recheckMs),
      maxList: intOption('max-list', o.maxList),
      ...(o.timeoutMs !== undefined ? { timeoutMs: intOption('timeout-ms', o.timeoutMs) } : {}),
      strictTombstones: o.strictTombstones === true,
      signal: ac.signal,
    });
    out(o.json ? `${JSON.stringify(report)}\n` : `${formatReport(report)}\n`);
    return report.equal ? EXIT_EQUAL : EXIT_DIFFERENT;
  } catch (err) {
    const code = err instanceof VerifyError ? err.code : 'ERROR';
    const message = err instanceof Error ? err.message : String(err);
    if (o.json) out(`${JSON.stringify({ error: { code, message } })}\n`);
    process.stderr.write(`ferry verify: ${message}\n`);
    return EXIT_ERROR;
  } finally {
    off();
  }
}

export function register(program: Command): void {
  program
    .command('verify')
    .description('compare a namespace on two sites partition by partition; exit 0 equal, 1 different, 2 error')
    .option('--a <host:port>', 'a node of site A')
    .option('--b <host:port>', 'a node of site B')
    .option('-n, --namespace <ns>', 'namespace', 'test')
    .option('--json', 'print one JSON object')
    .option('--recheck-ms <ms>', 're-check differences after this wait (writes in flight); 0 = no re-check', String(VERIFY_RECHECK_MS_DEFAULT))
    .option('--max-list <n>', 'differing keys to list (all are counted)', String(VERIFY_MAX_LIST_DEFAULT))
    .option('--timeout-ms <ms>', 'per-request timeout')
    .option('--strict-tombstones', 'count a tombstone on one site with no entry on the other as a difference')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_ERROR))
    .action(async (o: VerifyCliOptions) => {
      process.exitCode = await runVerify(o);
    });
}
