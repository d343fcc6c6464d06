import { DRAIN_SLACK_MS } from '@bus/core';

// The shutdown budget, one layer per process boundary, each one DRAIN_SLACK_MS past the one inside it:
// the engine's hard stop (drainTimeoutMs + slack), a worker's own close (+ slack for the transports),
// the supervisor's SIGKILL (+ slack, so the worker always gets to exit by itself first).

/**
 * How long a worker's `close()` may take before it gives up and exits 1: the engine's own bound
 * (`drainTimeoutMs + DRAIN_SLACK_MS`) plus one {@link DRAIN_SLACK_MS} for the transports to close.
 */
export function workerCloseTimeoutMs(drainTimeoutMs: number): number {
  return drainTimeoutMs + 2 * DRAIN_SLACK_MS;
}

/**
 * The default `killTimeoutMs` of a module: one {@link DRAIN_SLACK_MS} past {@link workerCloseTimeoutMs},
 * so a worker always gets to exit by itself before the supervisor kills it.
 */
export function defaultKillTimeoutMs(drainTimeoutMs: number): number {
  return workerCloseTimeoutMs(drainTimeoutMs) + DRAIN_SLACK_MS;
}
