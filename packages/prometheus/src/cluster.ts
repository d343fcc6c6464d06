import cluster from 'node:cluster';
import { OptionReader } from '@bus/core';
import { AggregatorRegistry, type Registry, register } from 'prom-client';
import { type MetricsServer, metricsHandler, serve } from './server.js';

/** Options of {@link clusterMetricsServer}. */
export interface ClusterMetricsServerOptions {
  /** TCP port; `0` picks a free one (read it from `url`). @default 9464 */
  port?: number;
  /** Interface to listen on. @default all interfaces (Node's default) */
  host?: string;
  /** Path the metrics are served on; other paths answer 404. @default '/metrics' */
  path?: string;
}

/**
 * Starts, in the `node:cluster` primary, one metrics endpoint for all workers: each scrape asks every
 * connected worker for its metrics (over the cluster IPC channel) and answers with their aggregate —
 * counters and histograms summed, `messagebus_consumer_lag` the largest value, pool gauges summed.
 * So a module run as N worker processes reports all N on one target.
 *
 * Workers answer only after calling {@link exposeToClusterPrimary}. A worker that does not answer
 * within 5 s fails the scrape (HTTP 500), as prom-client's aggregator does. The primary's own
 * metrics are not included.
 *
 * Rejects with a `ConfigError` (`@bus/core`) when called outside the cluster primary or with an invalid
 * option, or with the listen error when the port cannot be bound.
 */
export async function clusterMetricsServer(options: ClusterMetricsServerOptions = {}): Promise<MetricsServer> {
  const r = new OptionReader('bus/prometheus', '');
  r.closed(r.object('options', options), ['port', 'host', 'path']);
  if (!cluster.isPrimary) r.fail('clusterMetricsServer', 'must be called in the node:cluster primary', 'a worker');
  const aggregator = new AggregatorRegistry();
  return serve(r, options, metricsHandler({ metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType }));
}

const exposed = new Set<Registry>();
let listening = false;

/**
 * Makes this `node:cluster` worker answer the primary's metric requests (see
 * {@link clusterMetricsServer}) with `registry`. Call it once per registry, early in the worker; it
 * is idempotent and adds to the registries already exposed. Outside a cluster worker it does
 * nothing and returns `false`, so the same startup code runs single-process too.
 *
 * @param registry - @default prom-client's default `register`
 * @returns whether the registry is now exposed to a primary
 */
export function exposeToClusterPrimary(registry: Registry = register): boolean {
  if (!cluster.isWorker) return false;
  exposed.add(registry);
  AggregatorRegistry.setRegistries([...exposed]);
  if (!listening) {
    // prom-client installs its worker-side IPC listener when an AggregatorRegistry is constructed.
    new AggregatorRegistry();
    listening = true;
  }
  return true;
}
