import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OptionReader } from '@bus/core';
import { type Registry, register } from 'prom-client';

/** A node:http request listener. */
export type MetricsRequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Where the exposition comes from: the text and its content type. */
export interface ExpositionSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/**
 * A node:http handler that answers `GET`/`HEAD` with the registry's exposition (Prometheus text
 * format, or OpenMetrics if the registry is set to it), `405` for other methods and `500` with the
 * error message when collecting fails. It does not look at the path: mount it where you want it
 * (`if (req.url === '/metrics') return handler(req, res)`).
 *
 * @param registry - @default prom-client's default `register`
 */
export function metricsHandler(registry: ExpositionSource = register): MetricsRequestHandler {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (error: unknown) => {
        if (res.headersSent) return void res.destroy();
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`[bus/prometheus] collecting metrics failed: ${(error as Error)?.message ?? error}\n`);
      },
    );
  };
}

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /** TCP port; `0` picks a free one (read it from `url`). @default 9464 */
  port?: number;
  /** Interface to listen on. @default all interfaces (Node's default) */
  host?: string;
  /** Path the metrics are served on; other paths answer 404. @default '/metrics' */
  path?: string;
  /** @default prom-client's default `register` */
  registry?: Registry;
}

/** A running metrics endpoint. */
export interface MetricsServer extends AsyncDisposable {
  /** Full URL of the endpoint, e.g. `http://127.0.0.1:9464/metrics`. */
  readonly url: string;
  /** The underlying node:http server. */
  readonly server: Server;
  /** Stops listening and drops open (keep-alive) connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a small HTTP server exposing `registry` on `path` (default `http://<host>:9464/metrics`).
 * Resolves once it listens. Use it in each process you scrape; for `node:cluster` workers use
 * {@link clusterMetricsServer} in the primary instead.
 *
 * Rejects with a `ConfigError` (`@bus/core`) on an invalid option, or with the listen error when the port
 * cannot be bound.
 */
export async function startMetricsServer(options: MetricsServerOptions = {}): Promise<MetricsServer> {
  const r = new OptionReader('bus/prometheus', '');
  r.closed(r.object('options', options), ['port', 'host', 'path', 'registry']);
  const registry = options.registry ?? register;
  if (typeof (registry as Partial<Registry>)?.metrics !== 'function') r.fail('registry', 'must be a prom-client Registry', registry);
  return serve(r, options, metricsHandler(registry));
}

/** @internal Shared by the single-process and the cluster server. */
export async function serve(
  r: OptionReader,
  options: { port?: number; host?: string; path?: string },
  handler: MetricsRequestHandler,
): Promise<MetricsServer> {
  const port = r.int('port', options.port, DEFAULT_PORT, 0, 65_535);
  const host = r.optionalString('host', options.host);
  const path = r.string('path', options.path, '/metrics');
  if (!path.startsWith('/')) r.fail('path', 'must start with "/"', path);
  const server = createServer((req, res) => {
    const pathname = (req.url ?? '/').split('?', 1)[0];
    if (pathname !== path) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found; metrics are on ${path}\n`);
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = host === undefined || host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Prometheus keeps its scrape connection alive; without this, close() waits for it to time out.
      server.closeAllConnections();
    });
    return closing;
  };
  return { url: `http://${shownHost}:${address.port}${path}`, server, close, [Symbol.asyncDispose]: close };
}

/** Default port: the one registered for Prometheus exporters of OpenTelemetry-style apps. */
const DEFAULT_PORT = 9464;
