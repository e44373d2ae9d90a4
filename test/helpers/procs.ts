/**
 * Test helper: ferry processes (`node bin/ferry.mjs <command> ...`) as a user starts them, each
 * waited for by its ready line, every wait bounded, everything killed in teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../ops/free-port.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** A process gets this long to print its ready line. */
export const START_TIMEOUT_MS = 60_000;
/** After SIGTERM, this long before SIGKILL. */
export const STOP_TIMEOUT_MS = 15_000;

export { freePort };

export class FerryProcess {
  private proc: ChildProcess | undefined;
  output = '';
  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly ready: RegExp,
    private readonly env: Record<string, string> = {},
  ) {}

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** How the last run ended: exit code, or the signal that ended it (SIGKILL = it had to be killed). */
  get exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    const p = this.proc;
    if (!p || (p.exitCode === null && p.signalCode === null)) return undefined;
    return { code: p.exitCode, signal: p.signalCode };
  }

  /** The running process's pid (to look at its /proc entry). */
  get pid(): number | undefined {
    return this.running ? this.proc!.pid : undefined;
  }

  /** Sends a signal without waiting (SIGSTOP/SIGCONT freeze a peer; a second SIGTERM). */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.proc!.kill(sig);
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

  async start(): Promise<this> {
    const child = spawn(process.execPath, ['bin/ferry.mjs', ...this.args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0', ...this.env },
    });
    this.proc = child;
    const mark = this.output.length;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${this.name} did not get ready within ${START_TIMEOUT_MS} ms:\n${this.output.slice(-3000)}`));
      }, START_TIMEOUT_MS);
      const onData = (chunk: Buffer): void => {
        this.output += chunk.toString();
        if (this.ready.test(this.output.slice(mark))) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (c: Buffer) => {
        this.output += c.toString();
        if (this.output.length > 2_000_000) this.output = this.output.slice(-1_000_000);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code ?? signal}) before it was ready:\n${this.output.slice(-3000)}`));
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

/** Polls `cond` every 50 ms until true or `timeoutMs`, then throws naming `what`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function getJson<T>(url: string, timeoutMs = 5000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}
