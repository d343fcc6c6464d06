const BRAND = Symbol.for('bus.error');

/** Stable machine-readable codes carried by every {@link BusError}. */
export type BusErrorCode =
  | 'CONFIG'
  | 'CONNECTION'
  | 'POOL_TIMEOUT'
  | 'DECODE'
  | 'VALIDATION'
  | 'HANDLER'
  | 'PUBLISH'
  | 'CLOSED'
  | 'TIMEOUT';

export interface BusErrorOptions {
  cause?: unknown;
  /** Whether retrying the same operation may succeed. */
  retryable?: boolean;
}

/**
 * Base class of every error thrown by bus packages.
 *
 * `instanceof` breaks when two copies of a package are installed; use {@link BusError.isInstance}
 * (a `Symbol.for` brand) to test for bus errors across copies.
 */
export class BusError extends Error {
  readonly [BRAND] = true;
  readonly code: BusErrorCode;
  readonly retryable: boolean;

  constructor(code: BusErrorCode, message: string, options: BusErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BusError';
    this.code = code;
    this.retryable = options.retryable ?? true;
  }

  static isInstance(value: unknown): value is BusError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** A configuration value is invalid; `path` names the key, e.g. `modules.tasks.batchSize`. */
export class ConfigError extends BusError {
  readonly path: string;
  readonly value: unknown;
  constructor(path: string, expectation: string, value: unknown, source = 'bus') {
    super('CONFIG', `[${source}] ${path} ${expectation}, got ${describe(value)}`, { retryable: false });
    this.name = 'ConfigError';
    this.path = path;
    this.value = value;
  }
}

/** The broker could not be reached or the connection broke. */
export class ConnectionError extends BusError {
  constructor(message: string, options: BusErrorOptions = {}) {
    super('CONNECTION', message, options);
    this.name = 'ConnectionError';
  }
}

/** No pooled resource became free within the acquire timeout. */
export class PoolTimeoutError extends BusError {
  readonly pool: string;
  readonly timeoutMs: number;
  constructor(pool: string, timeoutMs: number, stats: { size: number; borrowed: number; pending: number; max: number }) {
    super(
      'POOL_TIMEOUT',
      `[bus] pool "${pool}" exhausted: no resource free within ${timeoutMs} ms ` +
        `(size ${stats.size}/${stats.max}, in use ${stats.borrowed}, waiting ${stats.pending})`,
    );
    this.name = 'PoolTimeoutError';
    this.pool = pool;
    this.timeoutMs = timeoutMs;
  }
}

/** A record's bytes could not be turned into an envelope. Never retried: it goes to the dead letter. */
export class DecodeError extends BusError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('DECODE', message, { ...options, retryable: false });
    this.name = 'DecodeError';
  }
}

/** A payload was rejected by the event's validator. Never retried: it goes to the dead letter. */
export class ValidationError extends BusError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('VALIDATION', message, { ...options, retryable: false });
    this.name = 'ValidationError';
  }
}

/** A handler failed; `cause` is what it threw. */
export class HandlerError extends BusError {
  readonly attempts: number;
  constructor(message: string, attempts: number, options: BusErrorOptions = {}) {
    super('HANDLER', message, options);
    this.name = 'HandlerError';
    this.attempts = attempts;
  }
}

/** A message could not be published; see `cause`. */
export class PublishError extends BusError {
  constructor(message: string, options: BusErrorOptions = {}) {
    super('PUBLISH', message, options);
    this.name = 'PublishError';
  }
}

/** The bus, transport or pool was used after `close()`. */
export class ClosedError extends BusError {
  constructor(what: string) {
    super('CLOSED', `[bus] ${what} is closed`, { retryable: false });
    this.name = 'ClosedError';
  }
}

/** An operation exceeded its deadline. */
export class TimeoutError extends BusError {
  constructor(message: string) {
    super('TIMEOUT', message);
    this.name = 'TimeoutError';
  }
}

/** Never retry this error: the message goes to the dead letter at once. */
export function isRetryable(error: unknown): boolean {
  return BusError.isInstance(error) ? error.retryable : true;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === undefined) return 'undefined';
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return String(value);
  }
}
