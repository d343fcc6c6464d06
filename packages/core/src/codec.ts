import type { Envelope, Headers, WireRecord } from './envelope.js';
import { DecodeError } from './errors.js';

/**
 * Turns envelopes into wire records and back. Pluggable per bus, so a service can speak another
 * producer's format (for example a compatibility codec for an existing deployment).
 */
export interface Codec {
  readonly name: string;
  encode(envelope: Envelope): WireRecord;
  /** @throws {DecodeError} naming what is missing or malformed. */
  decode(record: WireRecord): Envelope;
  /** The event name without decoding the payload, so unsubscribed events are skipped cheaply. */
  peekEvent(record: WireRecord): string | undefined;
}

/**
 * Attribute header names: the CloudEvents Kafka protocol binding in binary content mode
 * (`ce_*` headers, `content-type`, payload as the record value). Kafka tools and other CloudEvents
 * consumers read them as they are; on Redis they become stream fields of the same names.
 */
export const HEADER = {
  specVersion: 'ce_specversion',
  id: 'ce_id',
  type: 'ce_type',
  source: 'ce_source',
  time: 'ce_time',
  contentType: 'content-type',
} as const;

const RESERVED = new Set<string>(Object.values(HEADER));

/**
 * An RFC 3339 `date-time` (section 5.6): `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or a
 * `±HH:MM` offset (`T` and `Z` in either case). The day must exist in its month (see {@link parseRfc3339}).
 */
const RFC3339 = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

export interface JsonCodecOptions {
  /** `ce_source` of produced messages, e.g. the application name. @default omitted */
  source?: string;
}

/** The default codec: JSON payload, CloudEvents binary-mode attributes in headers. */
export function jsonCodec(options: JsonCodecOptions = {}): Codec {
  const defaultSource = options.source;
  // A batch shares one publish time: format it once, not once per message.
  let lastTime = Number.NaN;
  let lastIso = '';
  // And a batch read back shares it too: parse it once.
  let lastParsedText: string | undefined;
  let lastParsed = Number.NaN;
  return {
    name: 'json',
    encode(envelope) {
      const headers: Headers = {};
      for (const name in envelope.headers) {
        if (!RESERVED.has(name)) headers[name] = envelope.headers[name] as string;
      }
      headers[HEADER.specVersion] = '1.0';
      headers[HEADER.id] = envelope.id;
      headers[HEADER.type] = envelope.event;
      if (envelope.publishedAt !== lastTime) {
        lastIso = new Date(envelope.publishedAt).toISOString();
        lastTime = envelope.publishedAt;
      }
      headers[HEADER.time] = lastIso;
      headers[HEADER.contentType] = 'application/json';
      const source = envelope.source ?? defaultSource;
      if (source !== undefined) headers[HEADER.source] = source;
      const value = JSON.stringify(envelope.payload);
      if (value === undefined) {
        throw new DecodeError(`[bus] payload of event "${envelope.event}" is not JSON-serialisable`);
      }
      // The JSON text as it is: transports take strings (WireRecord.value), and turning it into a
      // Buffer here costs a copy, and makes ioredis convert every other argument of the XADD too.
      const record: WireRecord = { value, headers };
      if (envelope.key !== undefined) record.key = envelope.key;
      return record;
    },
    decode(record) {
      const h = record.headers;
      const id = h[HEADER.id];
      const event = h[HEADER.type];
      const time = h[HEADER.time];
      if (!id) throw new DecodeError(`[bus] missing header "${HEADER.id}" (message id)`);
      if (!event) throw new DecodeError(`[bus] message ${id}: missing header "${HEADER.type}" (event name)`);
      if (time !== lastParsedText && time !== undefined) {
        // Date.parse alone takes "0", "2024" or "1/2/2024": only an RFC 3339 date-time passes.
        lastParsed = parseRfc3339(time);
        lastParsedText = time;
      }
      const publishedAt = time === undefined ? Number.NaN : lastParsed;
      if (Number.isNaN(publishedAt)) {
        throw new DecodeError(`[bus] message ${id}: header "${HEADER.time}" is not an RFC 3339 time: ${JSON.stringify(time)}`);
      }
      const contentType = h[HEADER.contentType];
      if (contentType !== undefined && !contentType.startsWith('application/json')) {
        throw new DecodeError(`[bus] message ${id}: content-type "${contentType}" is not application/json`);
      }
      const v = record.value;
      const text =
        typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
      let payload: unknown;
      try {
        payload = JSON.parse(text);
      } catch (error) {
        throw new DecodeError(`[bus] message ${id}: payload is not valid JSON (${(error as Error).message})`, { cause: error });
      }
      const headers: Headers = {};
      for (const name in h) if (!RESERVED.has(name)) headers[name] = h[name] as string;
      const envelope: Envelope = { id, event, payload, publishedAt, headers };
      if (record.key !== undefined) envelope.key = record.key;
      const source = h[HEADER.source];
      if (source !== undefined) envelope.source = source;
      return envelope;
    },
    peekEvent(record) {
      return record.headers[HEADER.type];
    },
  };
}

/** Milliseconds since the epoch of an RFC 3339 date-time, `NaN` for anything else (`2024-02-30…` too). */
function parseRfc3339(text: string): number {
  if (!RFC3339.test(text)) return Number.NaN;
  const year = Number(text.slice(0, 4));
  const month = Number(text.slice(5, 7));
  const day = Number(text.slice(8, 10));
  // Date.parse rolls 2024-02-30 over to March 1st: check the day exists.
  if (new Date(Date.UTC(year, month - 1, day)).getUTCDate() !== day) return Number.NaN;
  return Date.parse(text);
}
