import { hostname } from 'node:os';
import { type Codec, DecodeError, type Envelope, type Headers, OptionReader, PublishError, type WireRecord } from '@bus/core';
import { PhpFloat, type PhpValue, phpFloatString, phpSerialize, phpUnserialize } from './php-serialize.js';

/** Field names of the PHP bus's envelope (`MessageStructHeaderStruct` / `MessageStructPayloadStruct`). */
export const HYPERF_MESSAGEBUS_FIELD = {
  /** Header: the event name. On Kafka it must be the record's first header: the PHP consumer reads `getHeaders()[0]`. */
  event: 'event',
  /** Header: the message id (`md5(microtime(true) . '-msg')` in PHP; our UUIDv7 `envelope.id`). */
  messageId: 'message_id',
  /** Payload: the producing application (`env('APP_NAME')`) ↔ `envelope.source`. */
  app: '_app',
  /** Payload: the producing host (`php_uname('n')`) ↔ the `_host` header of decoded envelopes. */
  host: '_host',
  /** Payload: `microtime(true)`, Unix time in seconds as a float ↔ `envelope.publishedAt` (ms). */
  happenedAt: '_happened_at',
} as const;

const F = HYPERF_MESSAGEBUS_FIELD;
const PAYLOAD_RESERVED = [F.app, F.host, F.happenedAt] as const;
const NUMERIC = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const INTEGER_LIKE = /^(?:0|[1-9][0-9]*)$/;

/** Which of the PHP bus's two wire formats a {@link hyperfMessagebusCodec} writes and reads. */
export type HyperfMessagebusWire = 'kafka' | 'redis';

export interface HyperfMessagebusCodecOptions {
  /**
   * The wire format, which must match the transport the PHP side uses (its `default_driver`):
   * - `'kafka'`: value = PHP `serialize(['headers' => [...], 'payload' => [...]])`, key = message id
   *   (or `envelope.key` when set), record headers `event`, `message_id` (in that order, first), then
   *   the envelope's headers.
   * - `'redis'`: one flat stream entry, `event`, `message_id`, `_app`, `_host`, `_happened_at` and the
   *   payload's fields, every value a string; the record value is empty and there is no key.
   */
  wire: HyperfMessagebusWire;
  /** `_app` of produced messages when the envelope has no `source` (the bus's `source` option). @default '' */
  app?: string;
  /** `_host` of produced messages. @default os.hostname() */
  host?: string;
  /**
   * Redis wire only: envelope headers (e.g. `['traceparent', 'tracestate']`) written as extra stream
   * fields and, when decoding, taken out of the payload back into the headers. PHP consumers see them
   * as payload fields, so the default writes none and drops every header.
   * @default []
   */
  carryHeaders?: readonly string[];
  /**
   * Redis wire only: the transport's field names for the record value and key (`redisStream`'s
   * `fields`). A PHP payload field of one of these names is lifted out of the fields by the transport;
   * the codec puts it back into the payload.
   * @default { value: '_data', key: '_key' }
   */
  transportFields?: { value?: string; key?: string };
}

/**
 * A codec that speaks the wire format of the PHP `hyperf-messagebus` (`mustafa3264/messagebus`), so a
 * Node service can publish to and consume from an existing Hyperf deployment.
 *
 * Mapping: `envelope.id` ↔ `message_id`, `event` ↔ `event`, `publishedAt` (ms) ↔ `_happened_at`
 * (seconds, float), `source` ↔ `_app` (default {@link HyperfMessagebusCodecOptions.app}), `_host` ↔ the
 * decoded envelope's `_host` header (written from {@link HyperfMessagebusCodecOptions.host}), the
 * payload ↔ the remaining payload fields.
 *
 * Payloads must be plain objects (the PHP handler receives `array $payload`) without the fields
 * `_app`, `_host`, `_happened_at` (and, on Redis, `event`, `message_id` and carried header names),
 * which PHP would silently let override the envelope. On the Redis wire they must also be flat:
 * strings, numbers, bigints, booleans (`'1'` / `''` as phpredis writes them), `null` (`''`); a nested
 * object or array is refused, since the PHP producer itself would write the string `"Array"` there
 * and no PHP consumer can read nesting from that format. Values read from Redis are strings, exactly
 * what PHP handlers get. Encoding errors are non-retryable {@link PublishError}s; decoding errors
 * {@link DecodeError}s (the message is dead-lettered).
 */
export function hyperfMessagebusCodec(options: HyperfMessagebusCodecOptions): Codec {
  const r = new OptionReader('bus/hyperf-compat', 'hyperfMessagebusCodec');
  const o = r.object('options', options) as Record<string, unknown>;
  const wire = o.wire === undefined ? r.fail('wire', 'must be "kafka" or "redis"', undefined) : r.oneOf<HyperfMessagebusWire>('wire', o.wire, ['kafka', 'redis'], 'kafka');
  const app = r.optionalString('app', o.app) ?? '';
  const host = r.optionalString('host', o.host) ?? hostname();
  const carry = new Set(o.carryHeaders === undefined ? [] : r.stringArray('carryHeaders', o.carryHeaders, false));
  const tf = r.object('transportFields', o.transportFields, true) ?? {};
  const transportFields = {
    value: r.at('transportFields').string('value', tf.value, '_data'),
    key: r.at('transportFields').string('key', tf.key, '_key'),
  };
  for (const name of carry) {
    if (name === F.event || name === F.messageId || (PAYLOAD_RESERVED as readonly string[]).includes(name)) {
      r.fail('carryHeaders', `must not name the PHP envelope field "${name}"`, o.carryHeaders);
    }
  }
  const fail = (envelope: Envelope, message: string, cause?: unknown): PublishError => {
    return new PublishError(`[bus/hyperf-compat] hyperf-messagebus codec (${wire}): event "${envelope.event}", message ${envelope.id}: ${message}`, { cause, retryable: false });
  };

  const checkEnvelope = (envelope: Envelope): Record<string, unknown> => {
    if (typeof envelope.event !== 'string' || envelope.event === '') throw fail(envelope, 'the event name must be a non-empty string');
    if (typeof envelope.id !== 'string' || envelope.id === '') throw fail(envelope, 'the message id must be a non-empty string');
    if (!Number.isFinite(envelope.publishedAt)) throw fail(envelope, `publishedAt must be a finite number, got ${envelope.publishedAt}`);
    const payload = envelope.payload;
    const proto = typeof payload === 'object' && payload !== null ? Object.getPrototypeOf(payload) : undefined;
    if (proto !== Object.prototype && proto !== null) {
      throw fail(envelope, `the payload must be a plain object (PHP handlers receive an array of named fields), got ${Array.isArray(payload) ? 'an array' : payload === null ? 'null' : typeof payload}`);
    }
    const reserved = wire === 'redis' ? [...PAYLOAD_RESERVED, F.event, F.messageId, ...carry] : PAYLOAD_RESERVED;
    for (const name of reserved) {
      if (Object.hasOwn(payload as object, name)) throw fail(envelope, `payload field "${name}" is reserved by the PHP bus's envelope`);
    }
    return payload as Record<string, unknown>;
  };

  const encodeKafka = (envelope: Envelope): WireRecord => {
    const payload = checkEnvelope(envelope);
    const headers: Headers = { [F.event]: envelope.event, [F.messageId]: envelope.id };
    for (const name in envelope.headers) {
      if (name === F.event || name === F.messageId || name === F.host) continue;
      // An integer-like name would be ordered before "event" by the object, and PHP reads the first header as the event.
      if (INTEGER_LIKE.test(name)) throw fail(envelope, `header name "${name}" is not supported (it would be sent before "event")`);
      headers[name] = envelope.headers[name] as string;
    }
    // Maps keep PHP's field order (_app, _host, _happened_at, then the data) even for integer-like keys.
    const phpPayload = new Map<string, unknown>([
      [F.app, envelope.source ?? app],
      [F.host, host],
      [F.happenedAt, new PhpFloat(envelope.publishedAt / 1000)],
    ]);
    for (const [name, value] of Object.entries(payload)) if (value !== undefined) phpPayload.set(name, value);
    let value: Buffer;
    try {
      value = phpSerialize(new Map<string, unknown>([
        ['headers', new Map([[F.event, envelope.event], [F.messageId, envelope.id]])],
        ['payload', phpPayload],
      ]));
    } catch (error) {
      throw fail(envelope, (error as Error).message, error);
    }
    return { key: envelope.key ?? envelope.id, value, headers };
  };

  const encodeRedis = (envelope: Envelope): WireRecord => {
    const payload = checkEnvelope(envelope);
    const headers: Headers = {
      [F.event]: envelope.event,
      [F.messageId]: envelope.id,
      [F.app]: envelope.source ?? app,
      [F.host]: host,
      [F.happenedAt]: phpFloatString(envelope.publishedAt / 1000),
    };
    for (const [name, value] of Object.entries(payload)) {
      const text = flat(value);
      if (text === undefined) continue;
      if (text === null) {
        throw fail(envelope, `payload field "${name}" is ${Array.isArray(value) ? 'an array' : 'an object'}; the PHP bus's Redis format is flat (phpredis writes "Array" for nested values) — flatten it or encode it into a string yourself`);
      }
      headers[name] = text;
    }
    for (const name of carry) {
      const value = envelope.headers[name];
      if (value !== undefined) headers[name] = value;
    }
    // No key: the transport would write it as a field, which PHP consumers take for payload.
    return { value: '', headers };
  };

  const decodeKafka = (record: WireRecord): Envelope => {
    const where = record.headers[F.messageId] ? `message ${record.headers[F.messageId]}` : 'message';
    const bad = (message: string): DecodeError => {
      return new DecodeError(`[bus/hyperf-compat] hyperf-messagebus codec (kafka): ${where}: ${message}`);
    };
    if (record.value.length === 0) throw bad('the record has no value (expected PHP serialize() data)');
    let root: PhpValue;
    try {
      root = phpUnserialize(record.value);
    } catch (error) {
      throw new DecodeError(`[bus/hyperf-compat] hyperf-messagebus codec (kafka): ${where}: ${(error as Error).message}`, { cause: error });
    }
    const message = assoc(root);
    if (!message) throw bad('the value is not a serialized array');
    const h = assoc(message.headers);
    const p = assoc(message.payload);
    if (!h) throw bad('the value has no "headers" array');
    if (!p) throw bad('the value has no "payload" array');
    const event = h[F.event];
    const id = h[F.messageId];
    if (typeof event !== 'string' || event === '') throw bad(`headers.${F.event} must be a non-empty string`);
    if (typeof id !== 'string' || id === '') throw bad(`headers.${F.messageId} must be a non-empty string`);
    const seconds = p[F.happenedAt];
    if (typeof seconds !== 'number' || !Number.isFinite(seconds)) throw bad(`payload.${F.happenedAt} must be a number (Unix seconds), got ${describe(seconds)}`);
    const headers: Headers = {};
    for (const name in record.headers) if (name !== F.event && name !== F.messageId) headers[name] = record.headers[name] as string;
    const payload: Record<string, PhpValue> = {};
    for (const name of Object.keys(p)) if (!(PAYLOAD_RESERVED as readonly string[]).includes(name)) set(payload, name, p[name] as PhpValue);
    const producer = p[F.host];
    if (typeof producer === 'string') headers[F.host] = producer;
    const envelope: Envelope = { id, event, payload, publishedAt: toMillis(seconds), headers };
    const source = p[F.app];
    if (typeof source === 'string' && source !== '') envelope.source = source;
    // The PHP producer's key is the message id: only a different key is a real ordering key.
    if (record.key !== undefined && record.key !== id) envelope.key = record.key;
    return envelope;
  };

  const decodeRedis = (record: WireRecord): Envelope => {
    const h = record.headers;
    const id = h[F.messageId];
    const event = h[F.event];
    const where = id ? `message ${id}` : 'entry';
    const bad = (message: string): DecodeError => {
      return new DecodeError(`[bus/hyperf-compat] hyperf-messagebus codec (redis): ${where}: ${message}`);
    };
    if (!event) throw bad(`missing field "${F.event}" (event name)`);
    if (!id) throw bad(`missing field "${F.messageId}"`);
    const time = h[F.happenedAt];
    if (time === undefined || !NUMERIC.test(time) || !Number.isFinite(Number(time))) {
      throw bad(`field "${F.happenedAt}" must be Unix seconds, got ${time === undefined ? 'nothing' : JSON.stringify(time)}`);
    }
    const headers: Headers = {};
    const payload: Record<string, string> = {};
    for (const name in h) {
      const value = h[name] as string;
      if (name === F.event || name === F.messageId || name === F.happenedAt || name === F.app) continue;
      if (name === F.host) headers[F.host] = value;
      else if (carry.has(name)) headers[name] = value;
      else set(payload, name, value);
    }
    const value = typeof record.value === 'string' ? record.value : Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength).toString('utf8');
    if (value.length > 0) set(payload, transportFields.value, value);
    if (record.key !== undefined) set(payload, transportFields.key, record.key);
    const envelope: Envelope = { id, event, payload, publishedAt: toMillis(Number(time)), headers };
    if (h[F.app]) envelope.source = h[F.app];
    return envelope;
  };

  return {
    name: `hyperf-messagebus/${wire}`,
    encode: wire === 'kafka' ? encodeKafka : encodeRedis,
    decode: wire === 'kafka' ? decodeKafka : decodeRedis,
    peekEvent(record) {
      return record.headers[F.event] || undefined;
    },
  };
}

/** A scalar as phpredis writes it into a stream field; undefined = leave out; null = not flat. */
function flat(value: unknown): string | undefined | null {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return Number.isSafeInteger(value) ? String(value) : phpFloatString(value);
    case 'bigint':
      return String(value);
    case 'boolean':
      return value ? '1' : '';
    case 'undefined':
      return undefined;
    case 'object': {
      if (value === null) return '';
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') {
        const json: unknown = toJSON.call(value);
        return typeof json === 'object' && json !== null ? null : flat(json);
      }
      return null;
    }
    default:
      return null;
  }
}

function assoc(value: PhpValue | undefined): Record<string, PhpValue> | undefined {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return undefined;
  // An empty PHP array decodes as [], but can still be an (empty) map of fields.
  if (Array.isArray(value)) return value.length === 0 ? {} : undefined;
  return value;
}

/** Seconds (float) to milliseconds, kept to the microsecond that microtime(true) carries. */
function toMillis(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e3;
}

function set<T>(target: Record<string, T>, name: string, value: T): void {
  // defineProperty: a field named "__proto__" is data, never the object's prototype.
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
}

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : typeof value === 'string' ? JSON.stringify(value) : typeof value;
}
