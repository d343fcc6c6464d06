import { AuthError, BusError, ConnectionError, PublishError } from '@bus/core';
import { errorChain, redactUrl, tlsFailure } from '@bus/core/kit';
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

/** Whether `error` (or one it wraps) says a broker could not be reached or did not answer in time. */
export function isConnectionError(error: unknown): boolean {
  for (const e of errorChain(error)) {
    if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
    if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE/.test(e.message)) return true;
  }
  return false;
}

/** Whether `error` (or one it wraps) is a refused SASL authentication (@platformatic/kafka's `AuthenticationError`). */
function isAuthError(error: unknown): boolean {
  for (const e of errorChain(error)) if (e.code === 'PLT_KFK_AUTHENTICATION' || (e as { apiId?: unknown }).apiId === 'SASL_AUTHENTICATION_FAILED') return true;
  return false;
}

/**
 * The distinct messages down the chain of wrapped errors, with the broker's own reason where it gave one
 * (a `ProtocolError`'s `serverErrorMessage`, e.g. "invalid credentials with SASL mechanism PLAIN"): the
 * client's wrappers hide both.
 */
export function rootMessage(error: unknown): string {
  const messages: string[] = [];
  const add = (m: string) => {
    if (m && !messages.includes(m)) messages.push(m);
  };
  for (const e of errorChain(error)) {
    add(e.message);
    const reason = (e as { serverErrorMessage?: unknown }).serverErrorMessage;
    if (typeof reason === 'string' && reason) add(`the broker says: ${reason}`);
  }
  return messages.join(': ') || String(error);
}

function isRetriable(error: unknown): boolean {
  for (const e of errorChain(error)) if ((e as { canRetry?: unknown }).canRetry === false) return false;
  return true;
}

/**
 * A @platformatic/kafka (or other) error as the bus's typed error: BusErrors pass; refused credentials →
 * `AuthError` (not retryable) with the broker's reason; a failed certificate check or TLS handshake →
 * `ConnectionError`, not retryable, with the TLS reason; unreachable or silent broker → `ConnectionError`
 * naming the brokers; anything else the `fallback` kind. No message holds a credential: the client's
 * errors carry none, and URL userinfo is masked.
 */
export function toBusError(error: unknown, what: string, brokers: readonly string[], fallback: 'publish' | 'config' | 'connection' = 'publish'): BusError {
  if (BusError.isInstance(error)) return error;
  const message = `[bus/kafka-platformatic] ${what}: ${redactUrl(rootMessage(error))}`;
  if (isAuthError(error)) return new AuthError(`${message} (check sasl: mechanism, username, password)`, { cause: error });
  const tls = tlsFailure(error);
  if (tls !== undefined) return new ConnectionError(`${message} — TLS handshake failed: ${tls} (check ssl: ca, servername)`, { cause: error, retryable: false });
  if (isConnectionError(error)) {
    // A timeout ("Request timed out") does not say which broker kept silent.
    const named = brokers.some((b) => message.includes(b));
    return new ConnectionError(named ? message : `${message} (brokers ${brokers.join(',')})`, { cause: error });
  }
  const retryable = isRetriable(error);
  if (fallback === 'config') return new BusError('CONFIG', message, { cause: error, retryable });
  if (fallback === 'connection') return new ConnectionError(message, { cause: error, retryable });
  return new PublishError(message, { cause: error, retryable });
}
