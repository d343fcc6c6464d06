import { deliverAtOf } from '../delay.js';
import { noopMetrics } from '../metrics.js';
import { type Outcome, type Policy, syncPolicy } from '../policy.js';

/**
 * Reports each handler attempt to the bus's `Metrics`: `jobStarted` with the delay since publish on
 * the first attempt of a delivery (and `delayLateness` for a delayed or broker-retried message), then `jobFinished` with its cost and outcome (`success`; `retry` when another
 * attempt follows; `dead_letter` when it was the last). Place it inside the retry policy so it sees
 * every attempt.
 */
export function metricsPolicy(): Policy {
  return syncPolicy((next) => (delivery) => {
    const { metrics } = delivery.services;
    // Without metrics, skip the clock reads of every attempt.
    if (metrics === noopMetrics) return next(delivery);
    const { labels } = delivery;
    if (!delivery.retried) {
      const now = Date.now();
      metrics.jobStarted(labels, Math.max(0, (now - delivery.envelope.publishedAt) / 1000));
      const due = deliverAtOf(delivery.record.headers);
      if (due !== undefined) metrics.delayLateness(labels, Math.max(0, (now - due) / 1000));
    }
    const started = performance.now();
    const failed = (error: unknown): never => {
      metrics.jobFinished(labels, (performance.now() - started) / 1000, delivery.isFinal(error) ? 'dead_letter' : 'retry');
      throw error;
    };
    let result: Outcome | Promise<Outcome>;
    try {
      result = next(delivery);
    } catch (error) {
      return failed(error);
    }
    if (!(result instanceof Promise)) {
      metrics.jobFinished(labels, (performance.now() - started) / 1000, 'success');
      return result;
    }
    return result.then((outcome) => {
      metrics.jobFinished(labels, (performance.now() - started) / 1000, 'success');
      return outcome;
    }, failed);
  });
}
