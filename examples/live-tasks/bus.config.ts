// The live-tasks app as a config file for the `bus` CLI:
//
//   BUS_TRANSPORT=redis npx bus run            # the tasks module as 2 worker processes on Redis
//   BUS_TRANSPORT=redis npx bus publish live live.duration '{"anchorId":"a1","minutes":60,"at":"2026-11-28T09:00:00Z"}'
//   BUS_TRANSPORT=redis npx bus status
//   BUS_TRANSPORT=redis npx bus board          # the web board on http://127.0.0.1:7300/ (read-only)
//
//   BUS_TRANSPORT=redis BUS_METRICS_PORT=9464 npx bus run   # + one /metrics for both workers
//
// BUS_TRANSPORT is memory (default), redis ($REDIS_URL) or kafka ($KAFKA_BROKERS). On Redis and Kafka
// the module runs as 2 processes, so the task's progress lives in Redis (shared by both).
//
// Metrics: every process has the bus's Prometheus metrics (prom-client's default registry); each worker
// exposes them to the supervisor (the `worker` hook), and with BUS_METRICS_PORT the `bus run` parent
// serves the sum of all workers on http://<host>:$BUS_METRICS_PORT/metrics (the `supervisor` hook).
import { defineConfig } from '@bus/runtime';
import { exposeToSupervisor, prometheus, supervisorMetricsServer } from '@bus/prometheus';
import { Redis } from 'ioredis';
import { tasksModule } from './src/app.js';
import type { Completion } from './src/daily-task.js';
import { type LiveEvents, liveEvents } from './src/events.js';
import { handledHere, metricsPort, workerName } from './src/metrics.js';
import { SharedDailyLiveTask } from './src/shared-progress.js';
import { createTransport, transportName } from './src/transport.js';

export const report = (c: Completion) =>
  console.log(`task daily-live-60min-100yuan completed: ${c.anchorId} on ${c.day} (${c.minutes} min live, ${c.income} yuan)`);

export default defineConfig<LiveEvents>(() => {
  const name = transportName([]);
  const shared = name !== 'memory';
  // Connects on first use only: the `bus run` parent reads this file but never handles a message.
  const redis = shared ? new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true }) : undefined;
  const port = metricsPort();
  return {
    events: liveEvents,
    transports: { [name]: createTransport(name) },
    source: 'live-app',
    metrics: prometheus(),
    // In the `bus run` parent, once: one endpoint that asks every worker for its metrics at each scrape.
    supervisor:
      port === undefined
        ? undefined
        : async (supervisor) => {
            const server = await supervisorMetricsServer(supervisor, { port });
            console.log(`metrics of all workers on ${server.url}`);
            return server;
          },
    // In each worker, before the module starts.
    worker: () => {
      exposeToSupervisor();
      return { close: async () => console.log(`worker ${workerName()} handled ${await handledHere()} messages`) };
    },
    modules: [
      {
        ...tasksModule(report, redis ? new SharedDailyLiveTask(redis, report) : undefined),
        processes: shared ? 2 : 1,
        restartDelayMs: 1000,
        drainTimeoutMs: 5000,
        ...(process.env.HEALTH_PORT ? { health: { port: Number(process.env.HEALTH_PORT) } } : {}),
      },
    ],
  };
});
