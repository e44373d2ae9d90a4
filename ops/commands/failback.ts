/**
 * `ferry failback --a host:port --b host:port --namespace NS --receiver-ba URL [--receiver-ab URL]
 * [--policy keep-b|a-wins] [--conflict-policy generation|last-update-time] [--json]`: brings a
 * returning site A back from B and switches over (ops/failback.ts). Progress lines go to stderr;
 * the report (text, or one JSON object) to stdout.
 * Exit status: 0 done, 2 usage error, or a step that failed (the message names it; re-run).
 */
import type { Command } from 'commander';
import { FailbackError, UnshippedPolicy, failback, formatFailback, type UnshippedPolicyId } from '../failback.js';
import { onShutdownSignal } from '../signals.js';
import { EXIT_ERROR, EXIT_OK, OpsError, REQUEST_TIMEOUT_MS_DEFAULT, endpointText, errorText, parseBaseUrl, parseCount, parseHostPort, parseHostPortList } from '../util.js';
import type { ConflictPolicyId } from '../../store/index.js';

const DRAIN_TIMEOUT_MS_DEFAULT = 60_000;

export interface FailbackCliOptions {
  a?: string;
  b?: string;
  namespace?: string;
  receiverBa?: string;
  receiverAb?: string;
  policy: string;
  unshippedTopic?: string;
  brokers?: string;
  conflictPolicy: string;
  drainTimeoutMs: string;
  requestTimeoutMs: string;
  json?: boolean;
}

export async function runFailback(o: FailbackCliOptions, out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  const ac = new AbortController();
  const off = onShutdownSignal(() => ac.abort());
  try {
    if (!o.a || !o.b) throw new OpsError('USAGE', '--a host:port (a node of the returning site) and --b host:port (a node of the active site) are required');
    if (!o.namespace) throw new OpsError('USAGE', '--namespace is required');
    if (!o.receiverBa) throw new OpsError('USAGE', '--receiver-ba URL is required (the receiver applying B\'s topic to A)');
    const policies = Object.values(UnshippedPolicy) as string[];
    if (!policies.includes(o.policy)) throw new OpsError('USAGE', `--policy must be one of ${policies.join(', ')}, got "${o.policy}"`);
    if (o.policy === UnshippedPolicy.TOPIC && (!o.unshippedTopic || !o.brokers)) throw new OpsError('USAGE', '--policy topic needs --unshipped-topic NAME and --brokers host:port[,host:port]');
    if (o.conflictPolicy !== 'generation' && o.conflictPolicy !== 'last-update-time') throw new OpsError('USAGE', `--conflict-policy must be generation or last-update-time, got "${o.conflictPolicy}"`);
    const report = await failback({
      a: parseHostPort(o.a, '--a'),
      b: parseHostPort(o.b, '--b'),
      namespace: o.namespace,
      receiverBA: parseBaseUrl(o.receiverBa, '--receiver-ba'),
      ...(o.receiverAb ? { receiverAB: parseBaseUrl(o.receiverAb, '--receiver-ab') } : {}),
      policy: o.policy as UnshippedPolicyId,
      ...(o.unshippedTopic && o.brokers ? { unshippedTopic: { topic: o.unshippedTopic, brokers: parseHostPortList(o.brokers, '--brokers').map(endpointText) } } : {}),
      conflictPolicy: o.conflictPolicy as ConflictPolicyId,
      drainTimeoutMs: parseCount(o.drainTimeoutMs, '--drain-timeout-ms'),
      requestTimeoutMs: parseCount(o.requestTimeoutMs, '--request-timeout-ms'),
      signal: ac.signal,
      say: (line) => err(`${line}\n`),
    });
    out(o.json ? `${JSON.stringify(report)}\n` : `${formatFailback(report)}\n`);
    return EXIT_OK;
  } catch (e) {
    const code = e instanceof OpsError ? e.code : 'ERROR';
    if (o.json) out(`${JSON.stringify({ error: { code, message: errorText(e), ...(e instanceof FailbackError ? { step: e.step, stepName: e.stepName } : {}) } })}\n`);
    err(`ferry failback: ${errorText(e)}\n`);
    return EXIT_ERROR;
  } finally {
    off();
  }
}

export function register(program: Command): void {
  program
    .command('failback')
    .description('bring a returning site A back from B (fence A, drain B->A, copy what differs, list unshipped A writes), then switch over (fence B, drain, verify, unfence A)')
    .option('--a <host:port>', 'a node of the returning site A')
    .option('--b <host:port>', 'a node of the active site B')
    .option('-n, --namespace <ns>', 'namespace')
    .option('--receiver-ba <url>', "the receiver applying B's topic to A, http://host:port (its metrics-port)")
    .option('--receiver-ab <url>', "the receiver applying A's topic to B: checked running at the end")
    .option('--policy <p>', 'writes A acknowledged but never shipped: keep-b (B\'s version on both sites), a-wins (A\'s where it wins by the conflict rule) or topic (A\'s versions to --unshipped-topic, then keep-b)', UnshippedPolicy.KEEP_B)
    .option('--unshipped-topic <name>', 'policy topic: the Kafka topic for A\'s unshipped versions')
    .option('--brokers <list>', 'policy topic: Kafka bootstrap brokers host:port[,host:port]')
    .option('--conflict-policy <p>', 'the receivers\' conflict rule: generation or last-update-time', 'generation')
    .option('--drain-timeout-ms <ms>', 'longest wait for each drain', String(DRAIN_TIMEOUT_MS_DEFAULT))
    .option('--request-timeout-ms <ms>', 'per-request timeout', String(REQUEST_TIMEOUT_MS_DEFAULT))
    .option('--json', 'print one JSON object')
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : EXIT_ERROR))
    .action(async (o: FailbackCliOptions) => {
      process.exitCode = await runFailback(o);
    });
}
