export { type Bus, type BusOptions, type BatchPublishResult, createBus, type PublishOptions, type PublishReceipt } from './bus.js';
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
  PoolTimeoutError,
  PublishError,
  TimeoutError,
  ValidationError,
} from './errors.js';
export type { BatchEntry, EventMap, EventName, Handler, HandlerContext, MessageInfo, Middleware } from './events.js';
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
export { createPool, POOL_DEFAULTS, type Pool, type PoolFactory, type PoolOptions } from './pool.js';
export { memoryTransport, type MemoryTransportOptions } from './memory.js';
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
export {
  type CloseOnSignalsOptions,
  type Closeable,
  closeOnSignals,
  type HealthOptions,
  type HealthServer,
  healthServer,
  notifySupervisor,
  type RunWorkerOptions,
  runWorker,
  type ShutdownHandle,
  type Startable,
  type SuperviseOptions,
  type Supervisor,
  supervise,
  WORKER_ENV,
  type WorkerGroupOptions,
  type WorkerHandle,
  type WorkerInfo,
  type WorkerMessage,
  type WorkerStatus,
} from './supervisor.js';
export {
  type BusConfig,
  type BusConfigInput,
  createBusFromConfig,
  defineConfig,
  type ModuleConfig,
  type ModuleProcessSettings,
  type ResolvedConfig,
  resolveConfig,
} from './config-file.js';
export {
  HYPERF_MESSAGEBUS_FIELD,
  type HyperfMessagebusCodecOptions,
  type HyperfMessagebusWire,
  hyperfMessagebusCodec,
} from './php-codec.js';
export { PhpFloat, phpFloatString, phpSerialize, PhpUnserializeError, phpUnserialize, type PhpValue } from './php-serialize.js';
export {
  type AnswerHandler,
  answerSupervisor,
  type AskFailure,
  type AskWorkersOptions,
  isSupervisedWorker,
  type SupervisorRequest,
  type WorkerReply,
  type WorkerResponse,
} from './supervisor.js';
export type { HookResult, SupervisorHook, WorkerHook, WorkerHookContext } from './config-file.js';
