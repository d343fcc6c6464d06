import type { RetryOptions } from './module.js';

export type RetryPolicy = Required<RetryOptions>;

/** Delay before attempt `attempt + 1`: exponential from `baseDelayMs`, capped, with jitter. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const spread = exponential * policy.jitter;
  return Math.max(0, Math.round(exponential - spread + random() * 2 * spread));
}

/** Resolves after `ms`, or at once when `signal` aborts (resolving `false`). */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
