import { HandlerError, isRetryable } from '../errors.js';
import { type Delivery, type Outcome, type Policy, runCatching, type SyncStep, syncPolicy } from '../policy.js';
import { backoffDelay, type RetryPolicy, sleep } from '../retry.js';

/**
 * Retries a failing handler in process, with exponential back-off and jitter, while the consumer
 * holds the message. Non-retryable errors (`BusError` with `retryable: false`, e.g. a
 * `ValidationError`) are not retried. After the last attempt it throws a {@link HandlerError}
 * carrying the attempt count (the dead-letter policy catches it). When the consumer starts stopping
 * during a back-off, the message is `released` for redelivery instead of waiting; a failure after
 * the drain deadline aborted the handler's `signal` is `released` too, never dead-lettered.
 */
export function retryPolicy(policy: RetryPolicy): Policy {
  // One function per policy, not a closure per message: it reads the delivery it is called on.
  const isFinal = function (this: Delivery, error: unknown): boolean {
    return this.attempt >= policy.attempts || !isRetryable(error);
  };
  return syncPolicy((next) => {
    // The first attempt runs without any promise of its own; only a failure enters the retry loop.
    const retry = (error: unknown, delivery: Delivery) => retryAfter(policy, isFinal, next, delivery, error);
    return (delivery) => {
      delivery.isFinal = isFinal;
      return runCatching(next, delivery, retry);
    };
  });
}

async function retryAfter(
  policy: RetryPolicy,
  isFinal: (this: Delivery, error: unknown) => boolean,
  next: SyncStep, delivery: Delivery, firstError: unknown): Promise<Outcome> {
  let error = firstError;
  for (;;) {
    const attempt = delivery.attempt;
    // Cut off by the drain deadline (its signal aborted): the handler did not fail on the
    // message, the consumer is stopping. Give it back; another member runs it whole.
    if (delivery.deadline.aborted) return 'released';
    if (isFinal.call(delivery, error)) {
      throw new HandlerError(`[bus] handler failed after ${attempt} attempt(s): ${errorMessage(error)}`, attempt, { cause: error });
    }
    if (delivery.stopping.aborted) return 'released';
    const { services, labels, envelope, consumer } = delivery;
    services.metrics.retried(labels);
    const delay = backoffDelay(policy, attempt);
    services.logger.warn('handler failed, retrying', { consumer, event: envelope.event, id: envelope.id, attempt, delay, error });
    if (!(await sleep(delay, delivery.stopping))) return 'released';
    delivery.attempt = attempt + 1;
    delivery.retried = true;
    try {
      return await next(delivery);
    } catch (e) {
      error = e;
    }
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
