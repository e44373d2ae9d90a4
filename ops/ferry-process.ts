/**
 * One ferry child process (`node bin/ferry.mjs <command> ...`) as a user starts it: started, then
 * waited for by its ready line (checked when stdout gets data), every wait bounded, stopped with SIGTERM (clean) or
 * SIGKILL (a crash), SIGKILL after a grace period. Tests and benchmarks share this one helper; its
 * output (stdout and stderr, the newest part) is kept for failure messages. A child whose starter
 * exits, however it exits, stops itself (the IPC lifeline).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const FERRY_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** A process gets this long to print its ready line. */
export const START_TIMEOUT_MS = 60_000;
/** After SIGTERM, this long before SIGKILL. */
export const STOP_TIMEOUT_MS = 15_000;
/** Output kept per process: past the maximum the older half is dropped. */
const OUTPUT_CHARS_MAX = 2_000_000;

export interface FerryProcessOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Flags for node itself, before the script (profiling). */
  nodeArgs?: string[];
}

export class FerryProcessError extends Error {
  readonly code = 'FERRY_PROCESS';
  constructor(message: string) {
    super(message);
    this.name = 'FerryProcessError';
  }
}

export class FerryProcess {
  private proc: ChildProcess | undefined;
  output = '';
  private readonly opts: FerryProcessOptions;

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly ready: RegExp,
    opts: FerryProcessOptions | Record<string, string> = {},
  ) {
    // A bare record is the environment (the older signature).
    this.opts = 'env' in opts || 'nodeArgs' in opts ? (opts as FerryProcessOptions) : { env: opts as Record<string, string> };
  }

  /** The running process's pid (to look at its /proc entry). */
  get pid(): number | undefined {
    return this.running ? this.proc!.pid : undefined;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** How the last run ended: exit code, or the signal that ended it (SIGKILL = it had to be killed). */
  get exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    const p = this.proc;
    if (!p || (p.exitCode === null && p.signalCode === null)) return undefined;
    return { code: p.exitCode, signal: p.signalCode };
  }

  /** Sends a signal without waiting (SIGSTOP/SIGCONT freeze a peer; a second SIGTERM). */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.proc!.kill(sig);
  }

  /** Last-resort synchronous kill (process exit handlers cannot wait). */
  killNow(): void {
    if (this.running) this.proc!.kill('SIGKILL');
  }

  /** Resolves once the process has exited; SIGKILLs it after `timeoutMs` (then exit.signal says so). */
  async exited(timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    const gone = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    await gone;
    clearTimeout(timer);
  }

  /** Starts the process; may be called again after stop() (same arguments). */
  async start(): Promise<this> {
    const child = spawn(process.execPath, [...(this.opts.nodeArgs ?? []), 'bin/ferry.mjs', ...this.args], {
      cwd: FERRY_ROOT,
      // The IPC channel is a lifeline (bin/ferry.mjs): when the test or benchmark that started the
      // child is gone, even killed by a timeout or kill -9, the child shuts down instead of living on.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, FORCE_COLOR: '0', ...(this.opts.env ?? {}) },
    });
    // Our end of the lifeline never keeps this process alive.
    child.channel?.unref();
    this.proc = child;
    const mark = this.output.length;
    const keep = (c: Buffer): void => {
      this.output += c.toString();
      if (this.output.length > OUTPUT_CHARS_MAX) this.output = this.output.slice(-OUTPUT_CHARS_MAX / 2);
    };
    child.stderr!.on('data', keep);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new FerryProcessError(`${this.name} did not get ready within ${START_TIMEOUT_MS} ms:\n${this.output.slice(-3000)}`));
      }, START_TIMEOUT_MS);
      child.stdout!.on('data', (c: Buffer) => {
        keep(c);
        if (this.ready.test(this.output.slice(mark))) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new FerryProcessError(`${this.name} exited (${code ?? signal}) before it was ready:\n${this.output.slice(mark).slice(-3000)}`));
      });
    });
    return this;
  }

  /** SIGTERM (clean) or SIGKILL (crash); resolves when the process is gone. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
}
