import { AuthError, BusError, ConnectionError, PublishError } from '@bus/core';
import type { BaseOptions } from '@platformatic/kafka';
import type { ResolvedOptions } from './options.js';

/** The connection options every @platformatic/kafka client of the transport shares. */
export function baseOptions(options: ResolvedOptions, clientId = options.clientId): BaseOptions {
  const base: BaseOptions = {
    clientId,
    bootstrapBrokers: options.brokers,
    connectTimeout: options.connectionTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    timeout: options.requestTimeoutMs,
    retries: options.retry.retries,
    retryDelay: options.retry.retryDelayMs,
    // Topics are created by the transport's admin client (topics.create), never by the broker on a fetch.
    autocreateTopics: false,
  };
  if (options.ssl !== undefined && options.ssl !== false) base.tls = options.ssl === true ? {} : options.ssl;
  if (options.sasl !== undefined) base.sasl = options.sasl;
  return base;
}

const CONNECTION_CODES = new Set(['PLT_KFK_NETWORK', 'PLT_KFK_TIMEOUT']);

function* chain(error: unknown): Generator<Error & { code?: string; canRetry?: boolean; errors?: unknown[] }> {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0 && seen.size < 50) {
    const e = queue.shift();
    if (!(e instanceof Error) || seen.has(e)) continue;
    seen.add(e);
    yield e as Error & { code?: string };
    const inner = (e as { errors?: unknown }).errors;
    if (Array.isArray(inner)) queue.push(...inner);
    if ((e as { cause?: unknown }).cause !== undefined) queue.push((e as { cause?: unknown }).cause);
  }
}

/** Whether `error` (or one it wraps) says a broker could not be reached or did not answer in time. */
export function isConnectionError(error: unknown): boolean {
  for (const e of chain(error)) {
    if (e.code && CONNECTION_CODES.has(e.code)) return true;
    if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE/.test(e.message)) return true;
  }
  return false;
}

function isAuthError(error: unknown): boolean {
  for (const e of chain(error)) if (e.code === 'PLT_KFK_AUTHENTICATION' || /SASL|authenticat/i.test(e.message)) return true;
  return false;
}

/** The distinct messages down the cause chain (the client's wrappers hide the broker's reason). */
export function rootMessage(error: unknown): string {
  const messages: string[] = [];
  for (const e of chain(error)) if (e.message && !messages.includes(e.message)) messages.push(e.message);
  return messages.join(': ') || String(error);
}

function isRetriable(error: unknown): boolean {
  for (const e of chain(error)) if (e.canRetry === false) return false;
  return true;
}

/**
 * A @platformatic/kafka (or other) error as the bus's typed error: BusErrors pass; unreachable broker
 * → `ConnectionError`; refused credentials → `AuthError`; anything else the `fallback` kind.
 */
export function toBusError(error: unknown, what: string, fallback: 'publish' | 'config' | 'connection' = 'publish'): BusError {
  if (BusError.isInstance(error)) return error;
  const message = `[bus/kafka-platformatic] ${what}: ${rootMessage(error)}`;
  if (isAuthError(error)) return new AuthError(message, { cause: error });
  if (isConnectionError(error)) return new ConnectionError(message, { cause: error });
  const retryable = isRetriable(error);
  if (fallback === 'config') return new BusError('CONFIG', message, { cause: error, retryable });
  if (fallback === 'connection') return new ConnectionError(message, { cause: error, retryable });
  return new PublishError(message, { cause: error, retryable });
}
