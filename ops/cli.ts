/**
 * The `ferry` command line. Each subcommand lives in ops/commands/<name>.ts and exports
 * `register(program)`; they are loaded here so `ferry --help` lists them all. process.env is
 * read only by the commands (the CLI edge), never below them.
 */
import { Command } from 'commander';

const COMMANDS = ['node', 'broker', 'receiver', 'demo', 'info', 'cluster', 'lag', 'replay', 'verify', 'failover', 'failback', 'dashboard'] as const;

const program = new Command('ferry')
  .description('ferry: cross-datacenter replication with an Aerospike-compatible SSD key-value store')
  .showHelpAfterError()
  // A command's options stop at its subcommand (`ferry cluster quiesce --node x`: --node is quiesce's).
  .enablePositionalOptions();

for (const name of COMMANDS) {
  const mod: { register?: (p: Command) => void } | undefined = await import(`./commands/${name}.js`).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(`commands/${name}.js`)) return undefined;
      throw err;
    },
  );
  mod?.register?.(program);
}

await program.parseAsync(process.argv);
