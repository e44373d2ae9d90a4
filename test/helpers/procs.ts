/**
 * Test helper: ferry processes (ops/ferry-process.ts, shared with the benchmarks) and bounded
 * waits.
 */
import { FERRY_ROOT, FerryProcess, START_TIMEOUT_MS, STOP_TIMEOUT_MS } from '../../ops/ferry-process.js';
import { freePort } from '../../ops/free-port.js';

export const ROOT = FERRY_ROOT;
export { FerryProcess, START_TIMEOUT_MS, STOP_TIMEOUT_MS, freePort };

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
