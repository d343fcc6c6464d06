import { DecodeError } from '@bus/core';

/**
 * A value PHP's `serialize()` format carries that {@link phpSerialize} writes and {@link phpUnserialize}
 * reads: `null`, `bool`, `int` (a `number`, or a `bigint` outside ±2^53), `float` (a `number`),
 * `string` (a JS string when it is valid UTF-8, otherwise the raw bytes as a `Uint8Array`) and
 * `array` (a JS array when its keys are 0…n−1 in order, otherwise an object).
 */
export type PhpValue = null | boolean | number | bigint | string | Uint8Array | PhpValue[] | { [key: string]: PhpValue };

/**
 * Forces a number to be written as a PHP float (`d:`), even when it is integral. Plain numbers are
 * written as `i:` when they are safe integers, as `d:` otherwise.
 */
export class PhpFloat {
  constructor(readonly value: number) {}
}

/** A malformed `serialize()` string; `offset` is the byte at which reading failed. */
export class PhpUnserializeError extends DecodeError {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`[bus/hyperf-compat] php unserialize: ${message} at byte offset ${offset}`);
    this.name = 'PhpUnserializeError';
    this.offset = offset;
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** Below PHP's own limit (`unserialize_max_depth` = 4096), so the recursive reader never overflows the stack. */
const MAX_DEPTH = 512;

/**
 * PHP's `serialize()` of a JavaScript value, byte for byte as PHP ≥ 7.1 writes the equivalent PHP
 * value (`serialize_precision = -1`): string lengths are UTF-8 byte counts, object keys that are
 * canonical decimal integers become `i:` keys as PHP's arrays make them.
 *
 * Accepts `null`, booleans, numbers, bigints (int64), strings, `Uint8Array` (a binary string),
 * arrays, {@link PhpFloat}, plain objects, `Map`s (string or integer keys, written in insertion order,
 * which an object cannot keep for integer-like keys) and objects with `toJSON()` (serialised as what it returns,
 * so a `Date` becomes its ISO string, as with `JSON.stringify`). Object properties that are
 * `undefined` are left out; `undefined` elsewhere is `N;`.
 *
 * @throws {TypeError} for anything else (functions, symbols, `Set`, class instances, cycles,
 *   bigints outside int64)
 */
export function phpSerialize(value: unknown): Buffer {
  const out: (string | Uint8Array)[] = [];
  write(value, out, [], '$');
  return Buffer.concat(out.map((part) => (typeof part === 'string' ? Buffer.from(part, 'utf8') : part)));
}

function write(value: unknown, out: (string | Uint8Array)[], stack: object[], path: string): void {
  if (value === null || value === undefined) {
    out.push('N;');
    return;
  }
  switch (typeof value) {
    case 'boolean':
      out.push(value ? 'b:1;' : 'b:0;');
      return;
    case 'number':
      // -0 only comes out of float arithmetic, and PHP keeps its sign as a float.
      out.push(Number.isSafeInteger(value) && !Object.is(value, -0) ? `i:${value};` : `d:${phpFloatString(value)};`);
      return;
    case 'bigint':
      if (value < INT64_MIN || value > INT64_MAX) throw new TypeError(`[bus/hyperf-compat] php serialize: ${path} = ${value}n is outside PHP's int range`);
      out.push(`i:${value};`);
      return;
    case 'string':
      out.push(`s:${Buffer.byteLength(value, 'utf8')}:"`, value, '";');
      return;
    case 'object':
      break;
    default:
      throw new TypeError(`[bus/hyperf-compat] php serialize: ${path} is a ${typeof value}, which PHP's serialize format cannot carry`);
  }
  if (value instanceof PhpFloat) {
    out.push(`d:${phpFloatString(value.value)};`);
    return;
  }
  if (value instanceof Uint8Array) {
    out.push(`s:${value.byteLength}:"`, value, '";');
    return;
  }
  if (stack.includes(value)) throw new TypeError(`[bus/hyperf-compat] php serialize: ${path} is a circular reference`);
  if (Array.isArray(value)) {
    stack.push(value);
    out.push(`a:${value.length}:{`);
    value.forEach((item, i) => {
      out.push(`i:${i};`);
      write(item, out, stack, `${path}[${i}]`);
    });
    out.push('}');
    stack.pop();
    return;
  }
  if (value instanceof Map) {
    // A Map keeps its insertion order for every key, where an object puts integer-like keys first.
    stack.push(value);
    out.push(`a:${value.size}:{`);
    for (const [key, item] of value) {
      if (typeof key === 'number' && Number.isSafeInteger(key)) out.push(`i:${key};`);
      else if (typeof key !== 'string') throw new TypeError(`[bus/hyperf-compat] php serialize: ${path} has a Map key that is neither a string nor an integer`);
      else if (isPhpIntKey(key)) out.push(`i:${key};`);
      else out.push(`s:${Buffer.byteLength(key, 'utf8')}:"`, key, '";');
      write(item, out, stack, `${path}.${String(key)}`);
    }
    out.push('}');
    stack.pop();
    return;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    write(toJSON.call(value), out, stack, path);
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`[bus/hyperf-compat] php serialize: ${path} is a ${proto?.constructor?.name ?? 'non-plain object'}; only plain objects, arrays and scalars can be serialised`);
  }
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  stack.push(value);
  out.push(`a:${entries.length}:{`);
  for (const [key, item] of entries) {
    if (isPhpIntKey(key)) out.push(`i:${key};`);
    else out.push(`s:${Buffer.byteLength(key, 'utf8')}:"`, key, '";');
    write(item, out, stack, `${path}.${key}`);
  }
  out.push('}');
  stack.pop();
}

/** PHP turns a string array key that is a canonical decimal int64 ("5", "-1"; not "05", "-0", "+1") into an int key. */
function isPhpIntKey(key: string): boolean {
  if (!/^(0|-?[1-9][0-9]{0,18})$/.test(key)) return false;
  const n = BigInt(key);
  return n >= INT64_MIN && n <= INT64_MAX;
}

/**
 * A float as PHP's `serialize()` / `var_export()` write it (`serialize_precision = -1`): the shortest
 * digits that round-trip, in exponent form (`1.0E+25`, `1.0E-5`) below 1e-4 and from 1e17 up.
 */
export function phpFloatString(value: number): string {
  if (Number.isNaN(value)) return 'NAN';
  if (value === Number.POSITIVE_INFINITY) return 'INF';
  if (value === Number.NEGATIVE_INFINITY) return '-INF';
  if (value === 0) return Object.is(value, -0) ? '-0' : '0';
  const sign = value < 0 ? '-' : '';
  // toExponential() without digits gives the shortest round-trip digits, as PHP's zend_gcvt mode 0 does.
  const [mantissa = '', exponent = '0'] = Math.abs(value).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const e = Number(exponent);
  const point = e + 1; // digits × 10^(point − digits.length), zend_gcvt's "decpt"
  if (point < -3 || point > 17) {
    return `${sign}${digits[0]}.${digits.slice(1) || '0'}E${e < 0 ? '-' : '+'}${Math.abs(e)}`;
  }
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (digits.length <= point) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const INT_RE = /^[+-]?[0-9]+$/;
const FLOAT_RE = /^(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|NAN|-?INF)$/;

/**
 * Reads PHP's `serialize()` format: `N;`, `b:`, `i:`, `d:`, `s:` and `a:` (arrays, nested up to 512
 * levels). Strings that are not valid UTF-8 come back as `Uint8Array`; ints outside
 * ±2^53 as `bigint`; an array whose keys are 0…n−1 in order as a JS array (so `a:0:{}` is `[]`),
 * any other as an object (a repeated key keeps its last value, as in PHP).
 *
 * Objects (`O:`, `C:`), enums (`E:`), references (`r:`, `R:`) and escaped strings (`S:`) are refused,
 * as is anything after the value.
 *
 * @throws {PhpUnserializeError} (a {@link DecodeError}) naming what was expected and the byte offset
 */
export function phpUnserialize(input: Uint8Array | string): PhpValue {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const reader = new Reader(bytes);
  const value = reader.value(0);
  if (reader.pos !== bytes.length) reader.fail(`unexpected data after the value (${bytes.length - reader.pos} bytes)`);
  return value;
}

class Reader {
  pos = 0;
  constructor(private readonly bytes: Buffer) {}

  fail(message: string, at = this.pos): never {
    throw new PhpUnserializeError(message, at);
  }

  value(depth: number): PhpValue {
    const start = this.pos;
    const tag = this.bytes[this.pos];
    if (tag === undefined) this.fail('unexpected end of data, expected a value');
    const type = String.fromCharCode(tag);
    if (type === 'N') {
      this.pos++;
      this.expect(';');
      return null;
    }
    if (!'bidsa'.includes(type)) {
      const known: Record<string, string> = { O: 'objects', C: 'objects', E: 'enums', r: 'references', R: 'references', S: 'escaped strings' };
      this.fail(known[type] ? `${known[type]} ("${type}:") are not supported` : `unknown type ${JSON.stringify(type)}`);
    }
    this.pos++;
    this.expect(':');
    switch (type) {
      case 'b': {
        const v = this.until(';');
        if (v !== '0' && v !== '1') this.fail(`boolean must be 0 or 1, got ${JSON.stringify(v)}`, start);
        return v === '1';
      }
      case 'i':
        return this.int(this.until(';'), start);
      case 'd': {
        const v = this.until(';');
        if (!FLOAT_RE.test(v)) this.fail(`malformed float ${JSON.stringify(v)}`, start);
        return v === 'NAN' ? Number.NaN : v === 'INF' ? Number.POSITIVE_INFINITY : v === '-INF' ? Number.NEGATIVE_INFINITY : Number(v);
      }
      case 's':
        return this.string(start);
      default:
        return this.array(start, depth);
    }
  }

  private array(start: number, depth: number): PhpValue {
    if (depth >= MAX_DEPTH) this.fail(`arrays nested deeper than ${MAX_DEPTH}`, start);
    const count = this.length(':');
    // Every element takes at least 6 bytes ("i:0;N;"): a larger count cannot be honest.
    if (count * 6 > this.bytes.length - this.pos) this.fail(`array claims ${count} elements but only ${this.bytes.length - this.pos} bytes follow`, start);
    this.expect('{');
    const keys: (string | number)[] = [];
    const values: PhpValue[] = [];
    let isList = true;
    for (let i = 0; i < count; i++) {
      const keyAt = this.pos;
      const key = this.value(depth + 1);
      let name: string | number;
      if (typeof key === 'number' || typeof key === 'bigint') name = Number.isSafeInteger(Number(key)) ? Number(key) : String(key);
      else if (typeof key === 'string') name = isPhpIntKey(key) && Number.isSafeInteger(Number(key)) ? Number(key) : key;
      else this.fail('array key must be an int or a string', keyAt);
      if (name !== i) isList = false;
      keys.push(name);
      values.push(this.value(depth + 1));
    }
    this.expect('}');
    if (isList) return values;
    const object: { [key: string]: PhpValue } = {};
    keys.forEach((key, i) => {
      // defineProperty: a "__proto__" key is data, never the object's prototype.
      Object.defineProperty(object, String(key), { value: values[i], enumerable: true, writable: true, configurable: true });
    });
    return object;
  }

  private string(start: number): PhpValue {
    const length = this.length(':');
    this.expect('"');
    const end = this.pos + length;
    if (end > this.bytes.length) this.fail(`string of ${length} bytes runs past the end of the data`, start);
    const raw = this.bytes.subarray(this.pos, end);
    this.pos = end;
    this.expect('"');
    this.expect(';');
    try {
      return utf8.decode(raw);
    } catch {
      return new Uint8Array(raw);
    }
  }

  private int(text: string, start: number): number | bigint {
    if (!INT_RE.test(text)) this.fail(`malformed int ${JSON.stringify(text)}`, start);
    const n = BigInt(text);
    if (n < INT64_MIN || n > INT64_MAX) this.fail(`int ${text} is outside PHP's int range`, start);
    return Number.isSafeInteger(Number(n)) ? Number(n) : n;
  }

  /** A non-negative decimal length followed by `terminator`. */
  private length(terminator: string): number {
    const at = this.pos;
    const text = this.until(terminator);
    if (!/^[0-9]{1,15}$/.test(text)) this.fail(`malformed length ${JSON.stringify(text)}`, at);
    return Number(text);
  }

  /** The ASCII text up to `terminator` (consumed). */
  private until(terminator: string): string {
    const code = terminator.charCodeAt(0);
    const end = this.bytes.indexOf(code, this.pos);
    // Numbers and lengths are short; a missing terminator within 64 bytes means broken data.
    if (end < 0 || end - this.pos > 64) this.fail(`expected '${terminator}'`);
    const text = this.bytes.toString('latin1', this.pos, end);
    this.pos = end + 1;
    return text;
  }

  private expect(char: string): void {
    if (this.bytes[this.pos] !== char.charCodeAt(0)) {
      const got = this.bytes[this.pos];
      this.fail(got === undefined ? `unexpected end of data, expected '${char}'` : `expected '${char}', got '${String.fromCharCode(got)}'`);
    }
    this.pos++;
  }
}
