import { HandlerError } from '../errors.js';
import { type Policy, syncPolicy } from '../policy.js';

/**
 * A message the broker has delivered more than `max` times without it being settled (its consumer
 * crashed on it each time) fails at once without running the handler, with a non-retryable
 * {@link HandlerError}: the dead-letter policy outside it stores it.
 */
export function maxDeliveriesPolicy(max: number): Policy {
  return syncPolicy((next) => (delivery) => {
    const count = delivery.record.deliveryCount;
    if (count <= max) return next(delivery);
    throw new HandlerError(
      `[bus] message ${delivery.envelope.id} was delivered ${count} times without being settled ` +
        `(more than maxDeliveries ${max}); its consumer probably crashed on it`,
      0,
      { retryable: false },
    );
  });
}
