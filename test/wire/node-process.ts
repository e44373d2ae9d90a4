/**
 * Test helper: runs a real ferry store node (`node bin/ferry.mjs node`) in a child process and
 * waits for its "ferry node listening on <host>:<port>" line. Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/procs.js';

export { freePort };

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Time a node gets to start listening. */
export const NODE_START_TIMEOUT_MS = 60_000;
/** Time a node gets to exit after SIGTERM before SIGKILL. */
export const NODE_STOP_TIMEOUT_MS = 15_000;
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
  let proc: ChildProcess | undefined;
  let output = '';

  const launch = async (): Promise<void> => {
    const child = spawn(process.execPath, ['bin/ferry.mjs', 'node', '--port', String(port), '--data', dataDir, ...(opts.extraArgs ?? [])], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0', ...(opts.env ?? {}) },
    });
    proc = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`node did not start within ${NODE_START_TIMEOUT_MS} ms:\n${output}`));
      }, NODE_START_TIMEOUT_MS);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (LISTEN_LINE.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (c: Buffer) => {
        output += c.toString();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`node exited early (${code ?? signal}):\n${output}`));
      });
    });
  };

  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => p.kill('SIGKILL'), NODE_STOP_TIMEOUT_MS);
      p.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      p.kill('SIGTERM');
    });
  };

  await launch();
  return {
    host: '127.0.0.1',
    port,
    dataDir,
    get output() {
      return output;
    },
    stop,
    async restart() {
      await stop();
      output = '';
      await launch();
    },
    async destroy() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
