/**
 * `@bus/kafka-platformatic`: the Apache Kafka transport of bus on @platformatic/kafka (Node.js ≥ 22.22),
 * with the classic and the KIP-848 consumer group protocols. Same wire format as `@bus/kafka`.
 *
 * @packageDocumentation
 */
export { KAFKA_PLATFORMATIC_CAPABILITIES, type KafkaPlatformaticTransport, kafkaPlatformatic } from './transport.js';
export { type KafkaPlatformaticOptions, optionsSchema as kafkaPlatformaticOptionsSchema, type ResolvedOptions as ResolvedKafkaPlatformaticOptions } from './options.js';
