import { OptionReader } from '@bus/core';
import { answerSupervisor, isSupervisedWorker, type Supervisor, type WorkerReply } from '@bus/runtime';
import { AggregatorRegistry, type Registry, register } from 'prom-client';
import { type MetricsServer, metricsHandler, serve } from './server.js';

/** Topic of the supervisor's metrics request (see `Supervisor.askWorkers` in `@bus/core`). */
export const SUPERVISOR_METRICS_TOPIC = 'bus/prometheus:metrics';

/** What a worker answers: `getMetricsAsJSON()` of each exposed registry. */
type WorkerMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[];

/** Options of {@link supervisorMetricsServer}. */
export interface SupervisorMetricsServerOptions {
  /** TCP port; `0` picks a free one (read it from `url`). @default 9464 */
  port?: number;
  /** Interface to listen on. @default all interfaces (Node's default) */
  host?: string;
  /** Path the metrics are served on; other paths answer 404. @default '/metrics' */
  path?: string;
  /** How long a scrape waits for the workers' answers, in ms. Keep it below Prometheus' `scrape_timeout`. @default 5000 */
  timeoutMs?: number;
}

/**
 * Starts, in the process that runs `supervise()` from `@bus/core` (e.g. the `bus run` parent, through
 * the config's `supervisor` hook), one metrics endpoint for all its worker processes: each scrape asks
 * every running worker for its metrics over the supervisor's IPC channel (`askWorkers`) and answers
 * with their aggregate (prom-client's `AggregatorRegistry.aggregate`, with the same settings as
 * {@link clusterMetricsServer}): counters and histograms summed, `messagebus_consumer_lag` the largest
 * value (every worker of a group sees the same lag), pool gauges summed. So a module run as N worker
 * processes reports all N on one target. The supervisor's own metrics are not included.
 *
 * Workers answer after calling {@link exposeToSupervisor}. A worker that is `ready` but does not
 * answer within `timeoutMs` (or answers with an error, or never exposed its metrics) fails the scrape
 * with HTTP 500 naming it, rather than reporting part of the workers (which would look like counter
 * resets). A worker still starting or already draining that does not answer is left out; a worker
 * waiting for its restart is not asked (its counters died with it).
 *
 * Listens eagerly; resolves once bound. The server is also closed when the supervisor stops (after
 * its workers are gone); `close()` is idempotent.
 *
 * Rejects with a `ConfigError` (`@bus/core`) on an invalid option, or with the listen error when the
 * port cannot be bound.
 */
export async function supervisorMetricsServer(supervisor: Supervisor, options: SupervisorMetricsServerOptions = {}): Promise<MetricsServer> {
  const r = new OptionReader('bus/prometheus', '');
  r.closed(options, ['port', 'host', 'path', 'timeoutMs']);
  if (typeof (supervisor as Partial<Supervisor> | undefined)?.askWorkers !== 'function') {
    r.fail('supervisor', 'must be a Supervisor (supervise() of @bus/core)', supervisor);
  }
  r.object('options', options);
  const timeoutMs = r.int('timeoutMs', options.timeoutMs, 5000, 1);
  const contentType = register.contentType;
  const metrics = async (): Promise<string> => {
    const replies = await supervisor.askWorkers<WorkerMetrics>(SUPERVISOR_METRICS_TOPIC, { timeoutMs });
    const missing = replies.filter((reply) => !reply.ok && reply.status === 'ready');
    if (missing.length > 0) throw new Error(missing.map(describe).join('; '));
    const registries = replies.flatMap((reply) => (reply.ok ? reply.value : []));
    return AggregatorRegistry.aggregate(registries).metrics();
  };
  const server = await serve(r, options, metricsHandler({ metrics, contentType }));
  supervisor.closeOnStop(server);
  return server;
}

function describe(reply: WorkerReply): string {
  return `worker ${reply.group}#${reply.index} (pid ${reply.pid}) gave no metrics: ${reply.ok ? '' : `${reply.reason}: ${reply.error}`}`;
}

const exposed = new Set<Registry>();

/**
 * Makes this worker answer the supervisor's metric requests (see {@link supervisorMetricsServer}) with
 * `registry`. Call it once per registry, early in the worker (e.g. in the config's `worker` hook); it
 * is idempotent and adds to the registries already exposed. Outside a worker of `supervise()` (see
 * `isSupervisedWorker` in `@bus/core`) it does nothing and returns `false`, so the same start-up code
 * runs single-process too.
 *
 * @param registry - @default prom-client's default `register`
 * @returns whether the registry is now exposed to a supervisor
 */
export function exposeToSupervisor(registry: Registry = register): boolean {
  if (typeof (registry as Partial<Registry> | undefined)?.getMetricsAsJSON !== 'function') {
    new OptionReader('bus/prometheus', '').fail('registry', 'must be a prom-client Registry', registry);
  }
  if (!isSupervisedWorker()) return false;
  if (exposed.size === 0) answerSupervisor(SUPERVISOR_METRICS_TOPIC, () => Promise.all([...exposed].map((reg) => reg.getMetricsAsJSON())));
  exposed.add(registry);
  return true;
}
