/**
 * `ferry replay`, two modes (ops/replay.ts):
 *   ferry replay --brokers B --group G --topic T (--from-time T | --offset N | --beginning)
 *     rewinds a stopped receiver group's committed offsets and prints old -> new per partition;
 *   ferry replay --node host:port --dc B --namespace NS --from-time T [--partition-from A --partition-to B]
 *     makes the shipper re-ship changes after T and follows its progress.
 * Exit status: 0 done, 1 re-ship still running at --timeout-ms, 2 usage error, unreachable
 * process, refusal, or a group that still has active members.
 */
import type { Command } from 'commander';
import {
  STORE_PARTITIONS,
  formatReship,
  formatReshipProgress,
  formatRewind,
  reship,
  rewindGroup,
  type RewindTarget,
} from '../replay.js';
import { onShutdownSignal } from '../signals.js';
import { readFileSync } from 'node:fs';
import { SASL_MECHANISMS, readKafkaSecurity, type KafkaSecurity, type SaslMechanism } from '../../kafka/security.js';
import {
  EXIT_ERROR,
  EXIT_INCOMPLETE,
  EXIT_OK,
  OpsError,
  REQUEST_TIMEOUT_MS_DEFAULT,
  errorText,
  parseCount,
  parseHostPort,
  parseTime,
} from '../util.js';
import { processIo, type CliIo } from './cli-io.js';

const RESHIP_TIMEOUT_MS_DEFAULT = 600_000;
const RESHIP_POLL_MS_DEFAULT = 500;
/** Without a terminal, a progress line at most this often. */
const PROGRESS_LINE_INTERVAL_MS = 5_000;

export interface ReplayCliOptions {
  brokers?: string;
  group?: string;
  topic?: string;
  fromTime?: string;
  offset?: string;
  beginning?: boolean;
  node?: string;
  dc?: string;
  namespace?: string;
  partitionFrom?: string;
  partitionTo?: string;
  tls?: boolean;
  tlsCaFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** commander's --no-tls-reject-unauthorized: false accepts any broker certificate. */
  tlsRejectUnauthorized?: boolean;
  saslMechanism?: string;
  saslUsername?: string;
  saslPasswordFile?: string;
  json?: boolean;
  timeoutMs: string;
  pollMs: string;
  requestTimeoutMs: string;
}

export type ReplayIo = CliIo;

const defaultIo = (): ReplayIo => processIo('stderr');

function rewindTarget(o: ReplayCliOptions): RewindTarget {
  const given = [o.fromTime !== undefined, o.offset !== undefined, o.beginning === true].filter(Boolean).length;
  if (given !== 1) throw new OpsError('USAGE', 'give exactly one of --from-time <ISO time or ms>, --offset <n>, --beginning');
  if (o.beginning) return { kind: 'beginning' };
  if (o.offset !== undefined) return { kind: 'offset', offset: parseCount(o.offset, '--offset') };
  return { kind: 'time', ms: parseTime(o.fromTime!, '--from-time') };
}

/** The environment variable holding the SASL password (a password on the command line shows in `ps`). */
export const REPLAY_SASL_PASSWORD_ENV = 'FERRY_REPLAY_SASL_PASSWORD';

/** TLS/SASL to Kafka from the flags, validated as the shipper's and receiver's config keys are. */
export function replaySecurity(o: ReplayCliOptions, env: NodeJS.ProcessEnv = process.env): KafkaSecurity {
  const mechanism = o.saslMechanism ?? 'none';
  if (!(SASL_MECHANISMS as readonly string[]).includes(mechanism)) throw new OpsError('USAGE', `--sasl-mechanism must be one of ${SASL_MECHANISMS.join(', ')}: value was "${mechanism}"`);
  let password = env[REPLAY_SASL_PASSWORD_ENV] ?? '';
  if (o.saslPasswordFile !== undefined) {
    try {
      password = readFileSync(o.saslPasswordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new OpsError('USAGE', `--sasl-password-file: cannot read ${o.saslPasswordFile}: ${errorText(err)}`);
    }
  }
  const values: Record<string, unknown> = {
    tls: o.tls === true,
    'tls-ca-file': o.tlsCaFile ?? '',
    'tls-cert-file': o.tlsCertFile ?? '',
    'tls-key-file': o.tlsKeyFile ?? '',
    'tls-reject-unauthorized': o.tlsRejectUnauthorized !== false,
    'sasl-mechanism': mechanism as SaslMechanism,
    'sasl-username': o.saslUsername ?? '',
    'sasl-password': password,
  };
  try {
    return readKafkaSecurity((k) => values[k], '--');
  } catch (err) {
    throw new OpsError('USAGE', errorText(err));
  }
}

export async function runReplay(o: ReplayCliOptions, io: ReplayIo = defaultIo()): Promise<number> {
  const ac = new AbortController();
  const off = onShutdownSignal(() => ac.abort());
  try {
    const groupMode = o.brokers !== undefined || o.group !== undefined || o.topic !== undefined;
    const shipMode = o.node !== undefined || o.dc !== undefined || o.partitionFrom !== undefined || o.partitionTo !== undefined;
    if (groupMode === shipMode) {
      throw new OpsError('USAGE', 'either rewind a receiver group (--brokers, --group, --topic) or re-ship from a node (--node, --dc, --namespace), not both');
    }
    if (groupMode) {
      if (!o.brokers || !o.group || !o.topic) throw new OpsError('USAGE', '--brokers, --group and --topic are all required to rewind a group');
      const brokers = o.brokers.split(',').map((b) => b.trim()).filter((b) => b.length > 0);
      for (const b of brokers) parseHostPort(b, '--brokers');
      const report = await rewindGroup({ brokers, group: o.group, topic: o.topic, target: rewindTarget(o), security: replaySecurity(o) });
      io.out(o.json ? `${JSON.stringify(report)}\n` : `${formatRewind(report)}\n`);
      return EXIT_OK;
    }
    if (!o.node || !o.dc || !o.namespace) throw new OpsError('USAGE', '--node, --dc and --namespace are all required to re-ship');
    if (o.tls || o.tlsCaFile || o.tlsCertFile || o.tlsKeyFile || o.saslMechanism || o.saslUsername || o.saslPasswordFile) {
      throw new OpsError('USAGE', 'the --tls-* and --sasl-* options apply to a group rewind; a re-ship talks to the node, whose shipper has its own Kafka settings');
    }
    if (o.fromTime === undefined) throw new OpsError('USAGE', '--from-time is required to re-ship (use 0 for everything)');
    if (o.offset !== undefined || o.beginning) throw new OpsError('USAGE', '--offset and --beginning apply to a group rewind; re-ship takes --from-time');
    let lastLine = 0;
    const report = await reship({
      node: parseHostPort(o.node, '--node'),
      dc: o.dc,
      namespace: o.namespace,
      fromMs: parseTime(o.fromTime, '--from-time'),
      partitionFrom: o.partitionFrom === undefined ? 0 : parseCount(o.partitionFrom, '--partition-from'),
      partitionTo: o.partitionTo === undefined ? STORE_PARTITIONS - 1 : parseCount(o.partitionTo, '--partition-to'),
      timeoutMs: parseCount(o.timeoutMs, '--timeout-ms'),
      pollMs: Math.max(50, parseCount(o.pollMs, '--poll-ms')),
      requestTimeoutMs: parseCount(o.requestTimeoutMs, '--request-timeout-ms'),
      signal: ac.signal,
      progress: (p) => {
        if (io.tty) io.err(`\r\x1b[K${formatReshipProgress(p)}`);
        else if (Date.now() - lastLine >= PROGRESS_LINE_INTERVAL_MS) {
          lastLine = Date.now();
          io.err(`${formatReshipProgress(p)}\n`);
        }
      },
    });
    if (io.tty) io.err('\r\x1b[K');
    io.out(o.json ? `${JSON.stringify(report)}\n` : `${formatReship(report)}\n`);
    return report.completed ? EXIT_OK : EXIT_INCOMPLETE;
  } catch (err) {
    if (io.tty) io.err('\r\x1b[K');
    const code = err instanceof OpsError ? err.code : 'ERROR';
    if (o.json) io.out(`${JSON.stringify({ error: { code, message: errorText(err) } })}\n`);
    io.err(`ferry replay: ${errorText(err)}\n`);
    return EXIT_ERROR;
  } finally {
    off();
  }
}

export function register(program: Command): void {
  program
    .command('replay')
    .description('rewind a stopped receiver group to a time/offset, or make a shipper re-ship changes after a time')
    .option('--brokers <list>', 'group rewind: Kafka brokers host:port[,host:port]')
    .option('--group <id>', 'group rewind: the receivers\' consumer group (group-id in their config)')
    .option('--topic <name>', 'group rewind: topic (ferry.<site>.<namespace>)')
    .option('--from-time <time>', 'ISO 8601 time or ms since the epoch: first message at or after it (rewind), changes after it (re-ship)')
    .option('--offset <n>', 'group rewind: this offset on every partition (clamped to what the log holds)')
    .option('--beginning', 'group rewind: the start of every partition')
    .option('--node <host:port>', 're-ship: a node of the shipping site')
    .option('--dc <name>', 're-ship: destination name in the node\'s xdr config')
    .option('-n, --namespace <ns>', 're-ship: namespace')
    .option('--partition-from <p>', `re-ship: first store partition (default 0)`)
    .option('--partition-to <p>', `re-ship: last store partition (default ${STORE_PARTITIONS - 1})`)
    .option('--tls', 'group rewind: connect to Kafka with TLS (implied by --tls-ca-file or --tls-cert-file)')
    .option('--tls-ca-file <file>', 'group rewind: PEM file of the CA that signed the brokers\' certificates')
    .option('--tls-cert-file <file>', 'group rewind: PEM client certificate (mutual TLS); needs --tls-key-file')
    .option('--tls-key-file <file>', 'group rewind: PEM private key of the client certificate')
    .option('--no-tls-reject-unauthorized', 'group rewind: accept any broker certificate (tests only)')
    .option('--sasl-mechanism <m>', `group rewind: SASL mechanism (${SASL_MECHANISMS.join(', ')})`)
    .option('--sasl-username <user>', 'group rewind: SASL user')
    .option('--sasl-password-file <file>', `group rewind: file holding the SASL password (or set ${REPLAY_SASL_PASSWORD_ENV})`)
    .option('--json', 'print one JSON object')
    .option('--timeout-ms <ms>', 're-ship: stop following progress after this long', String(RESHIP_TIMEOUT_MS_DEFAULT))
    .option('--poll-ms <ms>', 're-ship: progress poll interval', String(RESHIP_POLL_MS_DEFAULT))
    .option('--request-timeout-ms <ms>', 'per-request timeout', String(REQUEST_TIMEOUT_MS_DEFAULT))
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_ERROR))
    .action(async (o: ReplayCliOptions) => {
      process.exitCode = await runReplay(o);
    });
}
