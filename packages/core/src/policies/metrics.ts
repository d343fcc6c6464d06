import { noopMetrics } from '../metrics.js';
import type { Policy } from '../policy.js';

/**
 * Reports each handler attempt to the bus's `Metrics`: `jobStarted` with the delay since publish on
 * the first attempt, then `jobFinished` with its cost and outcome (`success`; `retry` when another
 * attempt follows; `dead_letter` when it was the last). Place it inside the retry policy so it sees
 * every attempt.
 */
export function metricsPolicy(): Policy {
  return (next) => async (delivery) => {
    const { metrics } = delivery.services;
    // Without metrics, skip the clock reads and the extra await of every attempt.
    if (metrics === noopMetrics) return next(delivery);
    const { labels } = delivery;
    if (delivery.attempt === 1) metrics.jobStarted(labels, Math.max(0, (Date.now() - delivery.envelope.publishedAt) / 1000));
    const started = performance.now();
    try {
      const outcome = await next(delivery);
      metrics.jobFinished(labels, (performance.now() - started) / 1000, 'success');
      return outcome;
    } catch (error) {
      metrics.jobFinished(labels, (performance.now() - started) / 1000, delivery.isFinal(error) ? 'dead_letter' : 'retry');
      throw error;
    }
  };
}
