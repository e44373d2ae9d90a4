/** Shared test helpers: temp data dirs, in-process brokers, kafkajs clients, bounded waits. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { Kafka, logLevel } from 'kafkajs';
import { startBroker, type BrokerHandle, type BrokerOptions } from '../../broker/server.js';

export function tempDir(t: ExecutionContext, prefix = 'ferry-broker-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function broker(t: ExecutionContext, opts: Partial<BrokerOptions> = {}): Promise<BrokerHandle & { dataDir: string }> {
  const dataDir = opts.dataDir ?? tempDir(t);
  const b = await startBroker({ port: 0, ...opts, dataDir, onError: (err) => t.log('broker error', (err as Error).stack) });
  t.teardown(() => b.close());
  return Object.assign(b, { dataDir });
}

export function kafka(b: { host: string; port: number }, clientId = 'test', retries = 8): Kafka {
  return new Kafka({
    clientId,
    brokers: [`${b.host}:${b.port}`],
    logLevel: logLevel.NOTHING,
    retry: { retries, initialRetryTime: 100, maxRetryTime: 1000 },
  });
}

/** Polls `cond` every 20 ms until true or `timeoutMs` passes (then throws). */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
