import { ConfigError } from './errors.js';
import { rejectUnknownKeys } from './kit/schema.js';

/**
 * Small validators for options, each naming the option's path on failure. Drivers use them too, with
 * their own `source` (e.g. `bus/redis`), so every config error reads
 * `[bus/redis] pool.max must be a positive integer, got 0`.
 */
export class OptionReader {
  constructor(
    readonly source: string,
    readonly base: string,
  ) {}

  private path(key: string): string {
    return this.base ? `${this.base}.${key}` : key;
  }

  /**
   * Rejects keys of the options object `value` (at this reader's path) that `known` does not list,
   * with the full key path and "did you mean …?". Returns `value` for chaining.
   */
  closed<T>(value: T, known: readonly string[]): T {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      rejectUnknownKeys(value as Record<string, unknown>, known, { source: this.source, path: this.base });
    }
    return value;
  }

  fail(key: string, expectation: string, value: unknown): never {
    throw new ConfigError(this.path(key), expectation, value, this.source);
  }

  /** A reader for a nested object option. */
  at(key: string): OptionReader {
    return new OptionReader(this.source, this.path(key));
  }

  object(key: string, value: unknown, optional = false): Record<string, unknown> | undefined {
    if (value === undefined && optional) return undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(key, 'must be an object', value);
    return value as Record<string, unknown>;
  }

  int(key: string, value: unknown, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      const range =
        min === 1 && max === Number.MAX_SAFE_INTEGER
          ? 'a positive integer'
          : min === 0 && max === Number.MAX_SAFE_INTEGER
            ? 'a non-negative integer'
            : `an integer from ${min} to ${max}`;
      this.fail(key, `must be ${range}`, value);
    }
    return value;
  }

  number(key: string, value: unknown, fallback: number, min: number, max: number): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
      this.fail(key, `must be a number from ${min} to ${max}`, value);
    }
    return value;
  }

  string(key: string, value: unknown, fallback?: string): string {
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'string' || value.length === 0) this.fail(key, 'must be a non-empty string', value);
    return value;
  }

  optionalString(key: string, value: unknown): string | undefined {
    return value === undefined ? undefined : this.string(key, value);
  }

  boolean(key: string, value: unknown, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') this.fail(key, 'must be true or false', value);
    return value;
  }

  oneOf<T extends string>(key: string, value: unknown, allowed: readonly T[], fallback: T): T {
    if (value === undefined) return fallback;
    if (!allowed.includes(value as T)) this.fail(key, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`, value);
    return value as T;
  }

  stringArray(key: string, value: unknown, nonEmpty = true): string[] {
    if (!Array.isArray(value) || (nonEmpty && value.length === 0)) {
      this.fail(key, nonEmpty ? 'must be a non-empty array of strings' : 'must be an array of strings', value);
    }
    value.forEach((item, i) => {
      if (typeof item !== 'string' || item.length === 0) this.fail(`${key}[${i}]`, 'must be a non-empty string', item);
    });
    return value as string[];
  }

  func<F extends (...args: never[]) => unknown>(key: string, value: unknown, optional = false): F | undefined {
    if (value === undefined && optional) return undefined;
    if (typeof value !== 'function') this.fail(key, 'must be a function', value);
    return value as F;
  }
}
