// The Prometheus endpoint: plain HTTP on metrics.address, GET /metrics and nothing else. Off
// unless configured; it reveals counts and timings (no names, ids or images), but should still
// be bound to loopback or a node-internal address.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError } from '../errors.js';
import { log } from '../log.js';
import type { DaemonMetrics } from './daemon-metrics.js';

export interface MetricsServer {
  /** "host:port" actually bound (port 0 in the config picks a free one). */
  address: string;
  close(): Promise<void>;
}

/** "127.0.0.1:9464" / "[::1]:9464" -> host and port. */
export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(i + 1)) };
}

export async function serveMetrics(metrics: DaemonMetrics, address: string): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: crib serves only /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        log.warn({ err }, 'collecting metrics failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
      },
    );
  });
  // A scraper gets a few seconds; nothing here should hold a connection longer.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new InvalidArgumentError(`metrics.address ${address}: cannot listen (${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ': the port is in use' : ''})`)));
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const shown = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  log.info({ address: shown }, 'metrics serving');
  return {
    address: shown,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
