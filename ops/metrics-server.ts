/**
 * A tiny HTTP endpoint for Prometheus: GET /metrics returns the text exposition built by
 * `render`, GET /stats a JSON document. Used by every ferry process that has metrics.
 */
import { createServer, type Server } from 'node:http';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(
  host: string,
  port: number,
  render: () => string | Promise<string>,
  stats?: () => unknown,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      try {
        if (req.url === '/metrics') {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
          res.end(await render());
        } else if (req.url === '/stats' && stats) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(stats()));
        } else {
          res.writeHead(404).end('not found\n');
        }
      } catch (err) {
        res.writeHead(500).end(`${(err as Error).message}\n`);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
