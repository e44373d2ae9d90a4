/**
 * Test helper: a real ferry store node (`node bin/ferry.mjs node`) in a child process (the
 * shared FerryProcess), ready at its "ferry node listening on <host>:<port>" line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FerryProcess, freePort } from '../helpers/procs.js';

export { freePort };

const LISTEN_LINE = /ferry node listening on ([\d.]+):(\d+)/;

export interface NodeProcess {
  host: string;
  port: number;
  dataDir: string;
  readonly output: string;
  /** Graceful stop (SIGTERM); resolves when the process exited. */
  stop(): Promise<void>;
  /** Stops and starts again on the same port and data directory. */
  restart(): Promise<void>;
  /** Stops and removes the data directory. */
  destroy(): Promise<void>;
}

export async function startNode(opts: { extraArgs?: string[]; env?: Record<string, string> } = {}): Promise<NodeProcess> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ferry-wire-'));
  const port = await freePort();
  const proc = new FerryProcess('node', ['node', '--port', String(port), '--data', dataDir, ...(opts.extraArgs ?? [])], LISTEN_LINE, { env: opts.env ?? {} });
  await proc.start();
  return {
    host: '127.0.0.1',
    port,
    dataDir,
    get output() {
      return proc.output;
    },
    stop: () => proc.stop(),
    async restart() {
      await proc.stop();
      proc.output = '';
      await proc.start();
    },
    async destroy() {
      await proc.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
