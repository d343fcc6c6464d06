/**
 * `@bus/kafka`: the Apache Kafka transport of bus, on kafkajs.
 *
 * @packageDocumentation
 */
export { DELAY_TIERS, tierTopics } from './delays.js';
export { KAFKA_CAPABILITIES, type KafkaTransport, kafka } from './transport.js';
export {
  DEFAULTS as KAFKA_DEFAULTS,
  type KafkaConsumerOptions,
  type KafkaLogLevel,
  type KafkaProducerOptions,
  type KafkaRetryOptions,
  type KafkaTopicOptions,
  type KafkaTransportOptions,
  type ResolvedOptions as ResolvedKafkaOptions,
} from './options.js';
