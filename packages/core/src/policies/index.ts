import type { Policy } from '../policy.js';
import type { RetryPolicy } from '../retry.js';
import { deadLetterPolicy } from './dead-letter.js';
import { maxDeliveriesPolicy } from './max-deliveries.js';
import { metricsPolicy } from './metrics.js';
import { redeliveryRetryPolicy } from './redeliver.js';
import { retryPolicy } from './retry.js';
import { tracingPolicy } from './tracing.js';

export { deadLetterPolicy, maxDeliveriesPolicy, metricsPolicy, redeliveryRetryPolicy, retryPolicy, tracingPolicy };

/** The policies a module gets by default, built from its options. */
export interface DefaultPolicies {
  deadLetter: Policy;
  maxDeliveries: Policy;
  tracing: Policy;
  retry: Policy;
  metrics: Policy;
}

/**
 * The default policies of a module, from its `retry` and `maxDeliveries` options (`retry` is
 * {@link redeliveryRetryPolicy} with `retry.mode: 'redeliver'`, {@link retryPolicy} otherwise).
 */
export function defaultPolicies(options: { retry: RetryPolicy; maxDeliveries: number }): DefaultPolicies {
  return {
    deadLetter: deadLetterPolicy(),
    maxDeliveries: maxDeliveriesPolicy(options.maxDeliveries),
    tracing: tracingPolicy(),
    retry: options.retry.mode === 'redeliver' ? redeliveryRetryPolicy(options.retry) : retryPolicy(options.retry),
    metrics: metricsPolicy(),
  };
}

/**
 * The default order, outermost first: dead letter (catches every failure below), max deliveries,
 * tracing (one span for all attempts), retry, metrics (one observation per attempt).
 */
export function defaultPolicyOrder(p: DefaultPolicies): Policy[] {
  return [p.deadLetter, p.maxDeliveries, p.tracing, p.retry, p.metrics];
}
