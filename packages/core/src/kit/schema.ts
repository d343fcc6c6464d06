import { ConfigError } from '../errors.js';

/** Where a value sits in the options: the package that reads them and the key path. */
export interface OptionPath {
  /** Package name in error messages, e.g. `bus/redis`. */
  source: string;
  /** Dotted key path, e.g. `modules.tasks.retry.attempts`. */
  path: string;
}

/**
 * One option's rule: how to check a value and what it becomes. Build them with {@link opt}; an
 * object of them ({@link opt.object}) is a closed option set.
 */
export class OptionSchema<T> {
  constructor(
    /** Checks `value` (never `undefined` unless the schema is optional) and returns it resolved. */
    readonly check: (value: unknown, at: OptionPath) => T,
    /** The `@default` when the key is absent (`undefined`: required, or optional without default). */
    readonly fallback: (() => T) | undefined = undefined,
    readonly isOptional: boolean = false,
    /** What the values are called in the plural, for messages about arrays of them (`strings`). */
    readonly plural?: string,
    /** The keys of an object schema (its closed set), e.g. to extend it elsewhere. */
    readonly keys?: readonly string[],
  ) {}

  /** The value may be absent (it stays `undefined`). */
  optional(): OptionSchema<T | undefined> {
    return new OptionSchema<T | undefined>(this.check, this.fallback, true, this.plural, this.keys);
  }

  /** The value may be absent; it then becomes `value` (objects: resolved from `{}` when `value` is `{}`). */
  default(value: T | (() => T)): OptionSchema<T> {
    const make = typeof value === 'function' ? (value as () => T) : () => value;
    return new OptionSchema<T>(this.check, make, true, this.plural, this.keys);
  }

  /** The same schema with a check across the resolved value's fields (throw with {@link fail}). */
  refine(check: (value: T, at: OptionPath) => void): OptionSchema<T> {
    return new OptionSchema<T>(
      (value, at) => {
        const resolved = this.check(value, at);
        check(resolved, at);
        return resolved;
      },
      this.fallback,
      this.isOptional,
      this.plural,
      this.keys,
    );
  }

  /** Resolves `value` at `at`; absent values take the default or fail when required. */
  parse(value: unknown, at: OptionPath): T {
    if (value === undefined) {
      if (this.fallback) return this.fallback();
      if (this.isOptional) return undefined as T;
    }
    return this.check(value, at);
  }
}

/** The resolved type of a schema. */
export type Infer<S> = S extends OptionSchema<infer T> ? T : never;

type Shape = Record<string, OptionSchema<unknown>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
/** The resolved object of a shape: keys whose value may be `undefined` are optional. */
type ObjectOf<S extends Shape> = Simplify<
  { [K in keyof S as undefined extends Infer<S[K]> ? never : K]: Infer<S[K]> } & {
    [K in keyof S as undefined extends Infer<S[K]> ? K : never]?: Infer<S[K]>;
  }
>;

/** Throws the {@link ConfigError} of a bad value at `at`. */
export function fail(at: OptionPath, expectation: string, value: unknown): never {
  throw new ConfigError(at.path || 'options', expectation, value, at.source);
}

/** The path of a key below `at`. */
export function child(at: OptionPath, key: string | number): OptionPath {
  const path = typeof key === 'number' ? `${at.path}[${key}]` : at.path ? `${at.path}.${key}` : key;
  return { source: at.source, path };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function range(min: number, max: number): string {
  if (min === 1 && max === Number.MAX_SAFE_INTEGER) return 'a positive integer';
  if (min === 0 && max === Number.MAX_SAFE_INTEGER) return 'a non-negative integer';
  return `an integer from ${min} to ${max}`;
}

/**
 * The closest known key to a misspelt one (case-insensitive equality first, then edit distance ≤ 2
 * or a third of the length), for "did you mean …?".
 */
export function suggest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const exact = known.find((k) => k.toLowerCase() === lower);
  if (exact) return exact;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = distance(lower, k.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = k;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** Damerau-Levenshtein distance (optimal string alignment): a swap of two letters counts as one edit. */
function distance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number) => d[i * cols + j] as number;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * cols + j] = best;
    }
  }
  return at(a.length, b.length);
}

/** Rejects keys of `value` that `known` does not list, naming the full path and the likely intended key. */
export function rejectUnknownKeys(value: Record<string, unknown>, known: readonly string[], at: OptionPath): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const guess = suggest(key, known);
    const hint = guess ? `; did you mean "${guess}"?` : `; known options: ${known.join(', ')}`;
    throw new ConfigError(child(at, key).path, `is not an option${hint}`, value[key], at.source);
  }
}

/**
 * Builders of {@link OptionSchema}s. One declaration per options object gives its type
 * (`Infer<typeof schema>`), its defaults and its check, and rejects unknown keys:
 *
 * ```ts
 * const poolSchema = opt.object({ max: opt.int().default(10), acquireTimeoutMs: opt.int(0).default(5000) });
 * const pool = poolSchema.parse(options.pool, { source: 'bus/redis', path: 'pool' }); // { max: number; acquireTimeoutMs: number }
 * ```
 */
export const opt = {
  /** An integer from `min` (default 1) to `max`. */
  int(min = 1, max = Number.MAX_SAFE_INTEGER): OptionSchema<number> {
    return new OptionSchema((v, at) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(at, `must be ${range(min, max)}`, v);
      return v;
    });
  },
  /** A number from `min` to `max`. */
  number(min: number, max: number): OptionSchema<number> {
    return new OptionSchema((v, at) => {
      if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max) fail(at, `must be a number from ${min} to ${max}`, v);
      return v;
    });
  },
  /** A non-empty string. */
  string(): OptionSchema<string> {
    return new OptionSchema(
      (v, at) => {
        if (typeof v !== 'string' || v.length === 0) fail(at, 'must be a non-empty string', v);
        return v;
      },
      undefined,
      false,
      'strings',
    );
  },
  boolean(): OptionSchema<boolean> {
    return new OptionSchema((v, at) => {
      if (typeof v !== 'boolean') fail(at, 'must be true or false', v);
      return v;
    });
  },
  /** One of the listed strings. */
  oneOf<const T extends string>(allowed: readonly T[]): OptionSchema<T> {
    return new OptionSchema((v, at) => {
      if (!allowed.includes(v as T)) {
        const guess = typeof v === 'string' ? suggest(v, allowed) : undefined;
        fail(at, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}${guess ? ` (did you mean "${guess}"?)` : ''}`, v);
      }
      return v as T;
    });
  },
  /** A function (not called at validation). */
  func<F extends (...args: never[]) => unknown>(): OptionSchema<F> {
    return new OptionSchema(
      (v, at) => {
        if (typeof v !== 'function') fail(at, 'must be a function', v);
        return v as F;
      },
      undefined,
      false,
      'functions',
    );
  },
  /** An array whose items each pass `item`; `nonEmpty` (default true) requires one at least. */
  array<T>(item: OptionSchema<T>, nonEmpty = true): OptionSchema<T[]> {
    return new OptionSchema((v, at) => {
      const of = item.plural ? ` of ${item.plural}` : '';
      if (!Array.isArray(v) || (nonEmpty && v.length === 0)) fail(at, `must be ${nonEmpty ? 'a non-empty array' : 'an array'}${of}`, v);
      return v.map((x, i) => item.parse(x, child(at, i)));
    });
  },
  /** A closed object: every key checked by `shape`, any other key rejected with "did you mean …?". */
  object<S extends Shape>(shape: S): OptionSchema<ObjectOf<S>> {
    const known = Object.keys(shape);
    return new OptionSchema(
      (v, at) => {
        if (!isPlainObject(v)) fail(at, 'must be an object', v);
        rejectUnknownKeys(v, known, at);
        const out: Record<string, unknown> = {};
        for (const key of known) {
          const resolved = (shape[key] as OptionSchema<unknown>).parse(v[key], child(at, key));
          if (resolved !== undefined) out[key] = resolved;
        }
        return out as ObjectOf<S>;
      },
      undefined,
      false,
      undefined,
      known,
    );
  },
  /**
   * An object with any keys, each value checked by `value` (e.g. consumer name → declaration);
   * with `emptyMessage`, an empty object fails with it.
   */
  record<T>(value: OptionSchema<T>, emptyMessage?: string): OptionSchema<Record<string, T>> {
    return new OptionSchema((v, at) => {
      if (!isPlainObject(v)) fail(at, 'must be an object', v);
      const keys = Object.keys(v);
      if (emptyMessage !== undefined && keys.length === 0) fail(at, emptyMessage, v);
      const out: Record<string, T> = {};
      for (const key of keys) out[key] = value.parse(v[key], child(at, key));
      return out;
    });
  },
  /** A value checked by your own function (throw with {@link fail}). */
  custom<T>(check: (value: unknown, at: OptionPath) => T): OptionSchema<T> {
    return new OptionSchema(check);
  },
};
