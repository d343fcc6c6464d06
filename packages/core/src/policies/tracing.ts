import { type Policy, syncPolicy } from '../policy.js';
import { noopTracing } from '../tracing.js';

/**
 * Wraps the processing of a message (all its in-process attempts) in the bus's `Tracing.process`,
 * in the trace context found in its headers. Costs nothing with the default no-op tracing.
 */
export function tracingPolicy(): Policy {
  return syncPolicy((next) => (delivery) => {
    const { tracing } = delivery.services;
    if (tracing === noopTracing) return next(delivery);
    const { record, envelope } = delivery;
    return tracing.process(
      {
        transport: delivery.transport,
        topic: record.topic,
        event: envelope.event,
        messageId: envelope.id,
        group: delivery.group,
        module: delivery.module,
        consumer: delivery.consumer,
        batchSize: delivery.batchSize,
        deliveryCount: record.deliveryCount,
        headers: envelope.headers,
      },
      // Tracing.process takes a promise-returning function.
      async () => next(delivery),
    );
  });
}
