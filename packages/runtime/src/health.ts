import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OptionReader } from '@bus/core';

export interface HealthOptions {
  /** TCP port; 0 picks a free one (see {@link HealthServer.port}). */
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
}

export interface HealthServer {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

/**
 * A tiny HTTP server: `GET /live` answers 200 while the process runs; `GET /ready` answers 200 when
 * `check().ready` (subscribed) and 503 otherwise (starting, draining), with `check().detail` as JSON.
 * Listens eagerly; resolves once bound.
 */
export function healthServer(options: HealthOptions & { check: () => { ready: boolean; detail?: unknown } }): Promise<HealthServer> {
  const r = new OptionReader('bus/runtime', 'health');
  r.closed(options, ['port', 'host', 'check']);
  const port = r.int('port', options.port, 0, 0, 65535);
  const host = r.string('host', options.host, '127.0.0.1');
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(`${JSON.stringify(body)}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'method not allowed' });
    if (path === '/live' || path === '/healthz') return send(200, { status: 'live', pid: process.pid });
    if (path === '/ready' || path === '/readyz') {
      let result: { ready: boolean; detail?: unknown };
      try {
        result = options.check();
      } catch (error) {
        result = { ready: false, detail: { error: (error as Error).message } };
      }
      return send(result.ready ? 200 : 503, { status: result.ready ? 'ready' : 'not ready', ...(result.detail === undefined ? {} : { detail: result.detail }) });
    }
    send(404, { error: 'not found; try /live or /ready' });
  });
  // Health must never keep a draining process alive.
  server.unref();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      let closing: Promise<void> | undefined;
      resolve({
        port: (server.address() as AddressInfo).port,
        host,
        close: () => {
          closing ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}
