/**
 * The lag dashboards' web server: GET / serves the page (SVG charts drawn by an inline script, no
 * assets from elsewhere), GET /charts.js and /dashboard.css the chart code and styles both pages
 * share (ops/dashboard-assets/), GET /api/stats the state and time series as JSON, which the page
 * polls once a second. The demo serves ops/dashboard.html; `ferry dashboard` serves
 * ops/deployment-dashboard.html for any deployment.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DashboardSample {
  at: number;
  writesPerS: number;
  shippedPerS: number;
  appliedPerS: number;
  recordsBehind: number;
  msBehind: number;
  lostConflict: number;
  deadLettered: number;
  consumerLag: number;
  error: string;
}

export interface DashboardState {
  phase: string;
  startedAt: number;
  ratePerS: number;
  sites: { a: string; b: string; broker: string };
  samples: readonly DashboardSample[];
  verify: { equal: boolean; differingKeys: number; recordsA: number; recordsB: number; text: string } | null;
}

export interface Dashboard {
  url: string;
  port: number;
  close(): Promise<void>;
}

const PAGE_FILE = new URL('./dashboard.html', import.meta.url);
/** Files both pages load, by path: content type and the file. */
const ASSETS: ReadonlyMap<string, { type: string; file: URL }> = new Map([
  ['/charts.js', { type: 'text/javascript; charset=utf-8', file: new URL('./dashboard-assets/charts.js', import.meta.url) }],
  ['/dashboard.css', { type: 'text/css; charset=utf-8', file: new URL('./dashboard-assets/dashboard.css', import.meta.url) }],
]);

/** `state` answers GET /api/stats (DashboardState for the demo's page); `page` is served at /. */
export async function startDashboard(o: { host: string; port: number; state: () => unknown; page?: URL }): Promise<Dashboard> {
  const page = readFileSync(o.page ?? PAGE_FILE);
  const assets = new Map([...ASSETS].map(([path, a]) => [path, { type: a.type, body: readFileSync(a.file) }]));
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page);
    } else if (assets.has(path)) {
      const a = assets.get(path)!;
      res.writeHead(200, { 'content-type': a.type, 'cache-control': 'no-store' });
      res.end(a.body);
    } else if (path === '/api/stats') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(o.state()));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${o.host}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
