export { type Bus, type BusOptions, busOptionsSchema, type BatchPublishResult, createBus, type PublishOptions, type PublishReceipt } from './bus.js';
export { DRAINED_DEFAULTS, type DrainedOptions } from './drained.js';
export { type Codec, HEADER, type JsonCodecOptions, jsonCodec } from './codec.js';
export { OptionReader } from './config.js';
export { DELAY_HEADER, type DelayedRecord, type DelayOptions, deliverAtOf, MAX_DELAY_MS } from './delay.js';
export type { Envelope, Headers, WireRecord } from './envelope.js';
export {
  BusError,
  type BusErrorCode,
  type BusErrorOptions,
  ClosedError,
  ConfigError,
  AuthError,
  ConnectionError,
  DecodeError,
  HandlerError,
  isRetryable,
  type PoolConnectState,
  PoolTimeoutError,
  PublishError,
  TimeoutError,
  ValidationError,
  type ValidationIssue,
} from './errors.js';
export type { StandardSchemaV1 } from './standard-schema.js';
export {
  DLQ_ISSUES_HEADER,
  defineEvents,
  type EventDefinitions,
  type EventSchemas,
  type InferEvents,
  validatePayload,
} from './validation.js';
export type { BatchEntry, EventMap, EventName, Handler, HandlerContext, MessageInfo, Middleware } from './events.js';
export {
  IDEMPOTENT_DEFAULTS,
  type IdempotencyState,
  type IdempotencyStore,
  type IdempotentOptions,
  idempotent,
  memoryIdempotencyStore,
} from './idempotent.js';
export { uuidv7 } from './id.js';
export { consoleLogger, type LogFields, type Logger, silentLogger } from './logger.js';
export { type JobLabels, type JobOutcome, type MessageOutcome, type Metrics, noopMetrics, type PoolStats } from './metrics.js';
export {
  type ConsumerDeclaration,
  type ConsumersDeclaration,
  DRAIN_SLACK_MS,
  defineModule,
  MODULE_DEFAULTS,
  type ModuleDefinition,
  moduleSchema,
  type ResolvedModule,
  type RetryOptions,
} from './module.js';
export {
  type DefaultPolicies,
  deadLetterPolicy,
  defaultPolicies,
  defaultPolicyOrder,
  maxDeliveriesPolicy,
  metricsPolicy,
  redeliveryRetryPolicy,
  retryPolicy,
  tracingPolicy,
} from './policies/index.js';
export { composePolicies, type Delivery, type Outcome, type Policy, type PolicyServices, type Step } from './policy.js';
export { createPool, POOL_DEFAULTS, poolSchema, type Pool, type PoolFactory, type PoolOptions } from './pool.js';
export { memoryTransport, type MemoryTransportOptions } from './memory.js';
export { type MemoryBroker, memoryBroker } from './memory.js';
export { redact, redactUrl } from './redact.js';
export { originTopic } from './retry-topic.js';
export { backoffDelay, sleep } from './retry.js';
export { DLQ_HEADER } from './router.js';
export { noopTracing, type ProcessTraceInfo, type PublishTraceInfo, type Tracing } from './tracing.js';
export type {
  BatchHandler,
  IncomingMessage,
  LagInfo,
  PublishResult,
  StartFrom,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportCapabilities,
  TransportContext,
} from './transport.js';
