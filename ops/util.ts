/**
 * Shared pieces of the operator commands (lag, replay, failover): endpoint parsing, JSON over
 * HTTP with timeouts, info commands to a node, time parsing and plain-text tables.
 */
import { FerryClient } from '../store/index.js';

/** Exit statuses shared by the operator commands. */
export const EXIT_OK = 0;
export const EXIT_INCOMPLETE = 1;
export const EXIT_ERROR = 2;

/** Default wait for one HTTP request or info command. */
export const REQUEST_TIMEOUT_MS_DEFAULT = 5_000;

export type OpsErrorCode = 'USAGE' | 'UNREACHABLE' | 'PROTOCOL' | 'REFUSED' | 'GROUP_ACTIVE' | 'TIMEOUT' | 'INTERRUPTED';

export class OpsError extends Error {
  constructor(
    readonly code: OpsErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OpsError';
  }
}

export interface Endpoint {
  host: string;
  port: number;
}

/** `host:port` (or `[v6]:port`) -> Endpoint; `what` names the option in the error. */
export function parseHostPort(s: string, what: string): Endpoint {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s.trim()) ?? /^([^:\s]+):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new OpsError('USAGE', `${what} must be host:port, got "${s}"`);
  return { host: m[1]!, port };
}

/** A comma-separated list of host:port. */
export function parseHostPortList(s: string, what: string): Endpoint[] {
  const parts = s.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
  if (parts.length === 0) throw new OpsError('USAGE', `${what} needs at least one host:port`);
  return parts.map((p) => parseHostPort(p, what));
}

export function endpointText(e: Endpoint): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** A receiver admin URL: `http://host:port` or bare `host:port`; no trailing slash. */
export function parseBaseUrl(s: string, what: string): string {
  const withScheme = /^https?:\/\//.test(s) ? s : `http://${s}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new OpsError('USAGE', `${what} must be a URL like http://host:port, got "${s}"`);
  }
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/** A non-negative integer option. */
export function parseCount(s: string, what: string): number {
  if (!/^\d+$/.test(s.trim())) throw new OpsError('USAGE', `${what} must be a non-negative integer, got "${s}"`);
  return Number(s.trim());
}

/** A time given as milliseconds since the epoch or an ISO 8601 date/time. */
export function parseTime(s: string, what: string): number {
  const t = s.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const ms = Date.parse(t);
  if (!/^\d{4}-\d{2}-\d{2}/.test(t) || Number.isNaN(ms)) throw new OpsError('USAGE', `${what} must be an ISO 8601 time or milliseconds since the epoch, got "${s}"`);
  return ms;
}

// ---------------------------------------------------------------- HTTP

async function httpJson<T>(method: 'GET' | 'POST', url: string, body: unknown, timeoutMs: number): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      signal: AbortSignal.timeout(timeoutMs),
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new OpsError('UNREACHABLE', `${method} ${url}: ${why}`);
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new OpsError('PROTOCOL', `${method} ${url}: HTTP ${res.status} ${text.trim().slice(0, 200)}`);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new OpsError('PROTOCOL', `${method} ${url}: the answer is not JSON: ${text.slice(0, 200)}`);
  }
}

export function getJson<T>(url: string, timeoutMs = REQUEST_TIMEOUT_MS_DEFAULT): Promise<T> {
  return httpJson<T>('GET', url, undefined, timeoutMs);
}

export function postJson<T>(url: string, body?: unknown, timeoutMs = REQUEST_TIMEOUT_MS_DEFAULT): Promise<T> {
  return httpJson<T>('POST', url, body, timeoutMs);
}

// ---------------------------------------------------------------- nodes

/** A connection to one node for info commands. */
export class NodeConn {
  private constructor(
    readonly endpoint: Endpoint,
    private readonly client: FerryClient,
  ) {}

  static async open(endpoint: Endpoint, timeoutMs = REQUEST_TIMEOUT_MS_DEFAULT): Promise<NodeConn> {
    try {
      const client = await FerryClient.connect({ hosts: [endpoint], tendIntervalMs: 0, timeoutMs, connectTimeoutMs: timeoutMs, maxConnsPerNode: 2 });
      return new NodeConn(endpoint, client);
    } catch (err) {
      throw new OpsError('UNREACHABLE', `node ${endpointText(endpoint)}: ${(err as Error).message}`);
    }
  }

  /** One info command; an `ERROR:` answer throws REFUSED, a lost connection UNREACHABLE. */
  async info(command: string): Promise<string> {
    try {
      return await this.client.infoValue(command);
    } catch (err) {
      const e = err as Error & { code?: unknown };
      // Positive codes are the server's answer (9 is also a client-side timeout).
      const refused = typeof e.code === 'number' && e.code > 0 && e.code !== 9;
      throw new OpsError(refused ? 'REFUSED' : 'UNREACHABLE', `node ${endpointText(this.endpoint)}: ${command.split(':')[0]}: ${e.message}`);
    }
  }

  close(): void {
    this.client.close();
  }
}

/** Opens a node, runs `fn`, closes it. */
export async function withNode<T>(endpoint: Endpoint, timeoutMs: number, fn: (n: NodeConn) => Promise<T>): Promise<T> {
  const n = await NodeConn.open(endpoint, timeoutMs);
  try {
    return await fn(n);
  } finally {
    n.close();
  }
}

/** `a=1;b=x` -> Map. */
export function parseKv(s: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of s.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i), part.slice(i + 1));
  }
  return out;
}

// ---------------------------------------------------------------- waiting

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

// ---------------------------------------------------------------- tables

export type Align = 'left' | 'right';

/** Plain-text table: a header row, then rows; numbers are right-aligned unless told. */
export function formatTable(headers: string[], rows: Array<Array<string | number>>, align?: Align[]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const al = headers.map((_, i) => align?.[i] ?? (rows.length > 0 && rows.every((r) => typeof r[i] === 'number') ? 'right' : 'left'));
  const line = (r: string[]) =>
    r
      .map((c, i) => (al[i] === 'right' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** 1234 -> "1.2 s", 95 -> "95 ms", 7_200_000 -> "2.0 h". */
export function formatDurationMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** The message of an error, for a one-line report. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
