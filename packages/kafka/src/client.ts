import { BusError, ConnectionError, type Logger, PublishError } from '@bus/core';
import { Kafka, type KafkaConfig, type LogEntry, logLevel } from 'kafkajs';
import type { ResolvedOptions } from './options.js';

const LEVEL: Record<ResolvedOptions['logLevel'], logLevel> = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
};

/**
 * Lines kafkajs logs as warnings although they describe a choice of ours, not a problem: bounded
 * retries of the idempotent producer (a publish must fail in bounded time; the broker still drops
 * duplicates within a retry series).
 */
const EXPECTED_WARNINGS = [/Limiting retries for the idempotent producer/];

/**
 * A kafkajs client whose log lines go to `logger()` (read at each line, so a logger attached after
 * construction is used). kafkajs `info`/`debug` lines become `debug`: kafkajs is chatty at `info`
 * (every join, commit, pause), the bus's `info` is for its own lifecycle.
 */
export function createClient(options: ResolvedOptions, logger: () => Logger, clientId = options.clientId): Kafka {
  const config: KafkaConfig = {
    clientId,
    brokers: options.brokers,
    connectionTimeout: options.connectionTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    retry: {
      retries: options.retry.retries,
      initialRetryTime: options.retry.initialRetryTimeMs,
      maxRetryTime: options.retry.maxRetryTimeMs,
      // Explicit, so vitest's NODE_ENV=test (which switches kafkajs to its test retry table) changes nothing.
      factor: 0.2,
      multiplier: 2,
    },
    logLevel: LEVEL[options.logLevel],
    logCreator: () => (entry: LogEntry) => {
      const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry.log;
      const line = `kafkajs: ${message}`;
      const data = { namespace: entry.namespace, ...fields };
      const log = logger();
      switch (entry.level) {
        case logLevel.ERROR:
          log.error(line, data);
          break;
        case logLevel.WARN:
          if (EXPECTED_WARNINGS.some((re) => re.test(message))) log.debug(line, data);
          else log.warn(line, data);
          break;
        default:
          log.debug(line, data);
      }
    },
  };
  if (options.ssl !== undefined) config.ssl = options.ssl;
  if (options.sasl !== undefined) config.sasl = options.sasl;
  return new Kafka(config);
}

const CONNECTION_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSBrokerNotFound',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSLockTimeout',
]);

/** Whether `error` (or one of its causes) says the broker could not be reached. */
export function isConnectionError(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    if (CONNECTION_ERRORS.has(e.name)) return true;
    if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE/.test(e.message)) return true;
  }
  return false;
}

/** Whether kafkajs would retry `error` (its `retriable` flag, or of its innermost cause). */
export function isRetriable(error: unknown): boolean {
  let e = error as { retriable?: boolean; cause?: unknown } | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 10; depth++) {
    if (e.cause === undefined || e.cause === e) return e.retriable !== false;
    e = e.cause as typeof e;
  }
  return true;
}

/** The message of the innermost cause, which is what kafkajs's wrappers hide. */
export function rootMessage(error: unknown): string {
  let e = error as { message?: string; cause?: unknown } | undefined;
  const messages: string[] = [];
  for (let depth = 0; e && typeof e === 'object' && depth < 10; depth++) {
    if (e.message && !messages.includes(e.message)) messages.push(e.message);
    if (e.cause === undefined || e.cause === e) break;
    e = e.cause as typeof e;
  }
  return messages.join(': ') || String(error);
}

/** A kafkajs (or other) error as the bus's typed error: BusErrors pass, broker unreachable → ConnectionError, else PublishError. */
export function toBusError(error: unknown, what: string): BusError {
  if (BusError.isInstance(error)) return error;
  const message = `[bus/kafka] ${what}: ${rootMessage(error)}`;
  if (isConnectionError(error)) return new ConnectionError(message, { cause: error });
  return new PublishError(message, { cause: error, retryable: isRetriable(error) });
}
