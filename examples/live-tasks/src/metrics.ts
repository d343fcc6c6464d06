import { WORKER_ENV } from '@bus/runtime';
import { type Registry, register } from 'prom-client';

/** `$BUS_METRICS_PORT`: where to serve /metrics (0 = any free port), or undefined for no endpoint. */
export function metricsPort(env = process.env): number | undefined {
  const value = env.BUS_METRICS_PORT;
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`BUS_METRICS_PORT must be a TCP port (0-65535), got ${JSON.stringify(value)}`);
  return port;
}

/** Messages handed to a handler in this process, read from `messagebus_consumed_total`. */
export async function handledHere(registry: Registry = register): Promise<number> {
  const metric = registry.getSingleMetric('messagebus_consumed_total');
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

/** The worker's name under `bus run`: `tasks#0`, `tasks#1`… (or `pid <n>` outside a supervisor). */
export function workerName(env = process.env): string {
  const group = env[WORKER_ENV.group];
  return group === undefined ? `pid ${process.pid}` : `${group}#${env[WORKER_ENV.index]} (pid ${process.pid})`;
}

/** Resolves on the first SIGINT or SIGTERM (and stops listening for them). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
