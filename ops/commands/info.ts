/**
 * `ferry info [--host h --port p | --node host:port] [command...]`: sends info commands to one
 * node and prints `name<TAB>value` per command, in order (like asinfo). With no command it asks
 * for a default set (node, build, edition, version, ferry-node). Exit status: 0, 1 when any
 * answer is an `ERROR:`, 2 on usage or connection errors.
 */
import type { Command } from 'commander';
import { FerryClient, parseInfoError } from '../../store/index.js';
import { VerifyError, parseEndpoint, type Endpoint } from '../verify.js';

export const INFO_DEFAULT_COMMANDS = ['node', 'build', 'edition', 'version', 'ferry-node'] as const;
export const INFO_TIMEOUT_MS_DEFAULT = 10_000;
const EXIT_OK = 0;
const EXIT_ERROR_ANSWER = 1;
const EXIT_USAGE = 2;

export interface InfoCliOptions {
  host?: string;
  port?: string;
  node?: string;
  lines?: boolean;
  timeoutMs: string;
}

function endpointOf(o: InfoCliOptions): Endpoint {
  if (o.node !== undefined) {
    if (o.host !== undefined || o.port !== undefined) throw new VerifyError('USAGE', 'give either --node or --host/--port');
    return parseEndpoint(o.node);
  }
  const port = Number(o.port ?? 3000);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new VerifyError('USAGE', `bad --port "${o.port}"`);
  return { host: o.host ?? '127.0.0.1', port };
}

/** Formats the answers: `name\tvalue`, or with `lines` the value split at ';' one item a line. */
export function formatInfo(commands: readonly string[], answers: Map<string, string>, lines = false): string {
  return commands
    .map((c) => {
      const v = answers.get(c) ?? '';
      return lines && parseInfoError(v) === undefined ? `${c}\n${v.split(';').filter((x) => x !== '').map((x) => `  ${x}`).join('\n')}` : `${c}\t${v}`;
    })
    .join('\n');
}

export async function runInfo(commands: string[], o: InfoCliOptions, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  let client: FerryClient | undefined;
  try {
    const ep = endpointOf(o);
    const timeoutMs = Number(o.timeoutMs);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new VerifyError('USAGE', `bad --timeout-ms "${o.timeoutMs}"`);
    const cmds = commands.length > 0 ? commands : [...INFO_DEFAULT_COMMANDS];
    client = await FerryClient.connect({ hosts: [ep], tendIntervalMs: 0, timeoutMs, connectTimeoutMs: timeoutMs });
    const answers = await client.info(cmds);
    out(`${formatInfo(cmds, answers, o.lines)}\n`);
    return cmds.some((c) => parseInfoError(answers.get(c) ?? '') !== undefined) ? EXIT_ERROR_ANSWER : EXIT_OK;
  } catch (err) {
    process.stderr.write(`ferry info: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_USAGE;
  } finally {
    client?.close();
  }
}

export function register(program: Command): void {
  program
    .command('info')
    .description(`send info commands to a node and print name<TAB>value lines (default: ${INFO_DEFAULT_COMMANDS.join(' ')})`)
    .argument('[command...]', 'info commands, e.g. build namespace/test "ferry-checksums:namespace=test"')
    .option('--host <address>', 'node address', undefined)
    .option('-p, --port <port>', 'node port (default 3000)')
    .option('--node <host:port>', 'node address and port')
    .option('-l, --lines', "print each value's ';'-separated items on their own lines")
    .option('--timeout-ms <ms>', 'connect and request timeout', String(INFO_TIMEOUT_MS_DEFAULT))
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
    .action(async (commands: string[], o: InfoCliOptions) => {
      process.exitCode = await runInfo(commands, o);
    });
}
