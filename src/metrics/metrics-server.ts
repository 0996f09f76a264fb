/**
 * `wharf start --metrics-address HOST:PORT`: a plain node:http server in the main process, not a
 * site (no binding, no pool, no log line), answering `GET /metrics` and nothing else. It runs
 * beside the listener so a scrape never waits in a pool's queue, and never counts in the metrics
 * it reports.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { MetricsError } from '../errors.js';
import { CONTENT_TYPES, exposition, negotiate } from './exposition.js';
import type { Registry } from 'prom-client';

export interface MetricsAddress {
  /** A host name or an IP address (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every address, as Prometheus exporters write it).
 * Throws MetricsError MET_ADDRESS.
 */
export function parseMetricsAddress(text: string): MetricsAddress {
  const bad = (why: string): MetricsError =>
    new MetricsError('MET_ADDRESS', `--metrics-address "${text}": ${why}; expected HOST:PORT, [IPv6]:PORT or :PORT (e.g. 127.0.0.1:9464)`);
  let host: string;
  let port: string;
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(text);
  if (v6 !== null) {
    host = v6[1]!;
    port = v6[2]!;
    if (isIP(host) !== 6) throw bad(`"${host}" is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) throw bad('no port');
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
    if (host.includes(':')) throw bad('an IPv6 address goes in brackets');
    if (host !== '' && isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(host)) throw bad(`"${host}" is not a host name or address`);
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw bad(`the port must be a number from 1 to 65535, not "${port}"`);
  // ':PORT' listens on every address (node's default: '::' with IPv4 mapped, else 0.0.0.0).
  return { host, port: Number(port) };
}

export function formatAddress(a: { host: string; port: number }): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host === '' ? '*' : a.host}:${a.port}`;
}

export interface MetricsServer {
  /** Where it listens (the port the kernel gave when 0 was asked). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

function answer(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function serve(registry: Registry, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '').split('?')[0];
  if (path !== '/metrics') return answer(res, 404, 'Not Found: metrics are at /metrics\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'Method Not Allowed\n', { Allow: 'GET, HEAD' });
  const format = negotiate(req.headers.accept);
  const body = await exposition(registry, format);
  res.writeHead(200, {
    'Content-Type': CONTENT_TYPES[format],
    'Content-Length': Buffer.byteLength(body),
    // The answer depends on Accept; and a scrape is a measurement, never to be replayed from a cache.
    Vary: 'Accept',
    'Cache-Control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Listens on `address` and answers scrapes from `registry`. Rejects with MetricsError MET_LISTEN
 * when the address cannot be listened on (in use, not an address of this machine, privileged port).
 */
export async function startMetricsServer(address: MetricsAddress, registry: Registry, log: { warn(m: string): void }): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    serve(registry, req, res).catch((err: unknown) => {
      // A bug in a collector: say so, answer 500, keep serving (the scraper shows the scrape failed).
      log.warn(`metrics: a scrape failed: ${(err as Error)?.stack ?? String(err)}`);
      if (!res.headersSent) answer(res, 500, 'Internal Server Error\n');
      else res.destroy();
    });
  });
  // Scrapers keep their connection; a stuck one must not hold a socket forever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const shown = formatAddress(address);
      const why =
        err.code === 'EADDRINUSE'
          ? 'the port is in use by another program'
          : err.code === 'EADDRNOTAVAIL'
            ? 'that address is not one of this machine\'s'
            : err.code === 'EACCES'
              ? 'ports below 1024 need root or CAP_NET_BIND_SERVICE'
              : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
                ? 'the host name does not resolve'
                : err.message;
      reject(new MetricsError('MET_LISTEN', `Cannot serve metrics on ${shown}: ${why} (--metrics-address)`, { cause: err }));
    });
    if (address.host === '') server.listen(address.port, resolve);
    else server.listen(address.port, address.host, resolve);
  });
  server.on('error', (err) => log.warn(`metrics endpoint: ${err.message}`));
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : address.port;
  let closing: Promise<void> | undefined;
  return {
    address: { host: address.host, port },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
