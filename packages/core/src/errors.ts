import { isSecretKey, redact, redactUrl } from './redact.js';

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
  | 'TIMEOUT'
  | 'AUTH';

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

  /**
   * Whether `value` is an error of this class (or a subclass), also when it comes from another copy
   * of `@bus/core`: `BusError.isInstance(e)` for any bus error, `ConfigError.isInstance(e)` for a
   * config error. Each class carries a `Symbol.for` brand of its own.
   */
  static isInstance<T extends BusError>(this: abstract new (...args: never[]) => T, value: unknown): value is T {
    if (typeof value !== 'object' || value === null || (value as Record<symbol, unknown>)[BRAND] !== true) return false;
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class isInstance was called on (ConfigError.isInstance).
    const brand = classBrand(this);
    return brand === BRAND || (value as Record<symbol, unknown>)[brand] === true;
  }
}

const brands = new WeakMap<object, symbol>();
function classBrand(cls: { name: string }): symbol {
  let brand = brands.get(cls);
  if (!brand) {
    brand = cls.name === 'BusError' ? BRAND : Symbol.for(`bus.error.${cls.name}`);
    brands.set(cls, brand);
  }
  return brand;
}

/** Marks an instance with the brand of its class and of every bus superclass. */
function brand(error: BusError, cls: { name: string }): void {
  (error as unknown as Record<symbol, boolean>)[classBrand(cls)] = true;
}

/** A configuration value is invalid; `path` names the key, e.g. `modules.tasks.batchSize`. */
export class ConfigError extends BusError {
  readonly path: string;
  readonly value: unknown;
  constructor(path: string, expectation: string, value: unknown, source = 'bus') {
    const secret = isSecretKey(path.slice(path.lastIndexOf('.') + 1));
    super('CONFIG', `[${source}] ${path} ${expectation}, got ${secret ? '***' : describe(value)}`, { retryable: false });
    this.name = 'ConfigError';
    brand(this, ConfigError);
    this.path = path;
    this.value = secret ? '***' : redact(value);
  }
}

/** The broker could not be reached or the connection broke. */
export class ConnectionError extends BusError {
  constructor(message: string, options: BusErrorOptions = {}) {
    super('CONNECTION', message, options);
    this.name = 'ConnectionError';
    brand(this, ConnectionError);
  }
}

/** What the pool knew about connecting when an acquire timed out. */
export interface PoolConnectState {
  /** The last error of creating a resource (connecting), when the last attempt failed. */
  lastError?: unknown;
  /** Creations (connects) running when the acquire timed out. */
  inProgress: number;
}

/**
 * No pooled resource became free within the acquire timeout. When connecting was what failed, the
 * message says so (with the connect error's text) and `cause` is that error, instead of "exhausted".
 */
export class PoolTimeoutError extends BusError {
  readonly pool: string;
  readonly timeoutMs: number;
  /** Whether every resource of the pool was still being created (connecting) when the acquire timed out. */
  readonly stillConnecting: boolean;
  constructor(pool: string, timeoutMs: number, stats: { size: number; borrowed: number; pending: number; max: number }, connect?: PoolConnectState) {
    const state = `(size ${stats.size}/${stats.max}, in use ${stats.borrowed}, waiting ${stats.pending})`;
    const failed = connect?.lastError;
    super(
      'POOL_TIMEOUT',
      failed !== undefined
        ? `[bus] pool "${pool}": no resource within ${timeoutMs} ms because connecting failed: ${redactUrl(failed instanceof Error ? failed.message || failed.name : String(failed))} ${state}`
        : stillConnecting(stats, connect)
          ? `[bus] pool "${pool}": no resource within ${timeoutMs} ms, still connecting (${connect?.inProgress} attempt(s) in progress) ${state}`
          : `[bus] pool "${pool}" exhausted: no resource free within ${timeoutMs} ms ${state}`,
      failed === undefined ? {} : { cause: failed },
    );
    this.name = 'PoolTimeoutError';
    brand(this, PoolTimeoutError);
    this.pool = pool;
    this.timeoutMs = timeoutMs;
    this.stillConnecting = failed === undefined && stillConnecting(stats, connect);
  }
}

function stillConnecting(stats: { size: number }, connect: PoolConnectState | undefined): boolean {
  return connect !== undefined && connect.inProgress > 0 && stats.size <= connect.inProgress;
}

/** A record's bytes could not be turned into an envelope. Never retried: it goes to the dead letter. */
export class DecodeError extends BusError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('DECODE', message, { ...options, retryable: false });
    this.name = 'DecodeError';
    brand(this, DecodeError);
  }
}

/** One problem a schema found in a payload. */
export interface ValidationIssue {
  /** Where in the payload, e.g. `items[0].price`; empty for the payload itself. */
  path: string;
  message: string;
}

/**
 * A payload was rejected by the event's schema. Never retried: it goes to the dead letter.
 * `event` names the event and `issues` the bad fields (path and message).
 */
export class ValidationError extends BusError {
  /** The event whose payload was refused. @default undefined */
  readonly event: string | undefined;
  /** What the schema found wrong. @default [] */
  readonly issues: readonly ValidationIssue[];
  constructor(message: string, options: { cause?: unknown; event?: string; issues?: readonly ValidationIssue[] } = {}) {
    super('VALIDATION', message, { cause: options.cause, retryable: false });
    this.name = 'ValidationError';
    brand(this, ValidationError);
    this.event = options.event;
    this.issues = options.issues ?? [];
  }
}

/** A handler failed; `cause` is what it threw. */
export class HandlerError extends BusError {
  readonly attempts: number;
  constructor(message: string, attempts: number, options: BusErrorOptions = {}) {
    super('HANDLER', message, options);
    this.name = 'HandlerError';
    brand(this, HandlerError);
    this.attempts = attempts;
  }
}

/** A message could not be published; see `cause`. */
export class PublishError extends BusError {
  constructor(message: string, options: BusErrorOptions = {}) {
    super('PUBLISH', message, options);
    this.name = 'PublishError';
    brand(this, PublishError);
  }
}

/** The bus, transport or pool was used after `close()`. */
export class ClosedError extends BusError {
  constructor(what: string) {
    super('CLOSED', `[bus] ${what} is closed`, { retryable: false });
    this.name = 'ClosedError';
    brand(this, ClosedError);
  }
}

/**
 * The broker refused the credentials (wrong or missing password, ACL denial, SASL failure). Retrying
 * does not help: fix the configuration. The server's own reason is in the message and in `cause`.
 */
export class AuthError extends BusError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('AUTH', message, { ...options, retryable: false });
    this.name = 'AuthError';
    brand(this, AuthError);
  }
}

/** An operation exceeded its deadline. */
export class TimeoutError extends BusError {
  constructor(message: string) {
    super('TIMEOUT', message);
    this.name = 'TimeoutError';
    brand(this, TimeoutError);
  }
}

/** Never retry this error: the message goes to the dead letter at once. */
export function isRetryable(error: unknown): boolean {
  return BusError.isInstance(error) ? error.retryable : true;
}

function describe(value: unknown): string {
  value = redact(value);
  if (typeof value === 'string') return JSON.stringify(redactUrl(value));
  if (typeof value === 'function') return 'a function';
  if (value === undefined) return 'undefined';
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return String(value);
  }
}
