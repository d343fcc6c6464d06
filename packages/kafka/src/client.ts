import { AuthError, BusError, ConnectionError, type Logger, PublishError, redact, redactUrl } from '@bus/core';
import { tlsFailure } from '@bus/core/kit';
import { Kafka, type KafkaConfig, type LogEntry, logLevel } from 'kafkajs';
import { fixKafkajsNegativeTimeout } from './kafkajs-timeout.js';
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
      const line = `kafkajs: ${redactUrl(message)}`;
      // Masks secret-looking fields (sasl, password, key…) should kafkajs ever log them.
      const data = { namespace: entry.namespace, ...(redact(fields) as Record<string, unknown>) };
      const log = logger();
      switch (entry.level) {
        case logLevel.ERROR:
          // kafkajs logs every error response of the protocol ("Response Heartbeat … rebalancing",
          // "coordinator is loading") before its caller retries or reports it: routine, not an error.
          if (entry.namespace === 'Connection' && message.startsWith('Response ')) log.debug(line, data);
          else log.error(line, data);
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
  fixKafkajsNegativeTimeout();
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
  'KafkaJSTimeout',
]);

/** Whether `error` (or one of its causes) says the broker could not be reached. */
export function isConnectionError(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    if (CONNECTION_ERRORS.has(e.name)) return true;
    if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE/.test(e.message)) return true;
  }
  return false;
}

/** Errors kafkajs bundles in a `KafkaJSAggregateError` (topic creation reports one per topic). */
function aggregated(error: unknown): unknown[] | undefined {
  const errors = (error as { errors?: unknown } | undefined)?.errors;
  return Array.isArray(errors) && errors.length > 0 ? errors : undefined;
}

/** Whether kafkajs would retry `error` (its `retriable` flag, or of its innermost cause). */
export function isRetriable(error: unknown): boolean {
  let e = error as { retriable?: boolean; cause?: unknown } | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 10; depth++) {
    const inner = aggregated(e);
    if (inner) return inner.every(isRetriable);
    if (e.cause === undefined || e.cause === e) return e.retriable !== false;
    e = e.cause as typeof e;
  }
  return true;
}

/** The messages down the cause chain (and of aggregated errors), which kafkajs's wrappers hide. */
export function rootMessage(error: unknown): string {
  let e = error as { message?: string; cause?: unknown } | undefined;
  const messages: string[] = [];
  for (let depth = 0; e && typeof e === 'object' && depth < 10; depth++) {
    if (e.message && !messages.includes(e.message)) messages.push(e.message);
    const inner = aggregated(e);
    if (inner) {
      messages.push(inner.map(rootMessage).join('; '));
      break;
    }
    if (e.cause === undefined || e.cause === e) break;
    e = e.cause as typeof e;
  }
  return messages.join(': ') || String(error);
}

/** Whether `error` (or one of its causes) is a refused SASL authentication. */
export function isAuthError(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    if (e.name === 'KafkaJSSASLAuthenticationError' || /SASL .*authentication failed|SaslAuthenticate|Authentication failed/i.test(e.message)) return true;
    const inner = aggregated(e);
    if (inner?.some(isAuthError)) return true;
  }
  return false;
}

/**
 * A kafkajs (or other) error as the bus's typed error: BusErrors pass, refused SASL credentials →
 * `AuthError`, a failed certificate check → `ConnectionError` (not retryable) with the TLS reason,
 * broker unreachable → `ConnectionError`, anything else → the `fallback` kind (`PublishError` for a
 * publish, a `CONFIG` BusError for a refused topic creation, `ConnectionError` for a member that
 * could not start).
 */
export function toBusError(error: unknown, what: string, fallback: 'publish' | 'config' | 'connection' = 'publish'): BusError {
  if (BusError.isInstance(error)) return error;
  const message = `[bus/kafka] ${what}: ${redactUrl(rootMessage(error))}`;
  if (isAuthError(error)) return new AuthError(`${message} (check sasl: mechanism, username, password)`, { cause: error });
  const tls = tlsFailure(error);
  if (tls !== undefined) return new ConnectionError(`${message} — TLS handshake failed: ${tls} (check ssl: ca, servername)`, { cause: error, retryable: false });
  if (isConnectionError(error)) return new ConnectionError(message, { cause: error });
  const retryable = isRetriable(error);
  if (fallback === 'config') return new BusError('CONFIG', message, { cause: error, retryable });
  if (fallback === 'connection') return new ConnectionError(message, { cause: error, retryable });
  return new PublishError(message, { cause: error, retryable });
}

/**
 * Connects a kafkajs client (producer, admin, consumer) within `timeoutMs`: kafkajs's own
 * `connectionTimeout` ends at the TCP connect, and a broker that accepts and never answers would
 * hold `connect()` for `requestTimeout` × retries. Past the deadline the client is disconnected
 * (ending its retries) and a `ConnectionError` names the brokers and what was tried; a failure
 * before it is typed by {@link toBusError} (`AuthError` for SASL, TLS reasons, `ConnectionError`).
 */
export async function connectWithin(
  client: { connect(): Promise<void>; disconnect(): Promise<void> },
  options: Pick<ResolvedOptions, 'brokers' | 'connectTimeoutMs' | 'sasl' | 'ssl'>,
  what: string,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const connecting = client.connect();
  connecting.catch(() => {});
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), options.connectTimeoutMs);
  });
  try {
    const outcome = await Promise.race([connecting, deadline]);
    if (outcome !== 'timeout') return;
  } catch (error) {
    await client.disconnect().catch(() => {});
    throw toBusError(error, `${what} to ${options.brokers.join(',')}`, 'connection');
  } finally {
    clearTimeout(timer);
  }
  // Not awaited: kafkajs's disconnect waits for the connect it interrupts.
  void client.disconnect().catch(() => {});
  const steps = ['TCP connect', options.ssl ? 'TLS handshake' : '', 'ApiVersions', options.sasl ? `SASL ${options.sasl.mechanism}` : '', 'Metadata']
    .filter(Boolean)
    .join(', ');
  throw new ConnectionError(
    `[bus/kafka] ${what} to ${options.brokers.join(',')}: no connection within ${options.connectTimeoutMs} ms (connectTimeoutMs; tried ${steps}) — ` +
      'is a Kafka broker listening there, with this security protocol?',
  );
}
