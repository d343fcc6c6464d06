/**
 * Attribute names of the OpenTelemetry messaging semantic conventions used on bus spans, plus the
 * bus's own (`bus.*`). Inlined rather than imported from `@opentelemetry/semantic-conventions`, so
 * that `@opentelemetry/api` stays the only dependency.
 */
export const ATTR = {
  messagingSystem: 'messaging.system',
  destinationName: 'messaging.destination.name',
  consumerGroupName: 'messaging.consumer.group.name',
  messageId: 'messaging.message.id',
  batchMessageCount: 'messaging.batch.message_count',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  errorType: 'error.type',
  busEvent: 'bus.event',
  busModule: 'bus.module',
  busConsumer: 'bus.consumer',
  busDeliveryCount: 'bus.delivery_count',
} as const;
