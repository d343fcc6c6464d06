import { describe, expect, it } from 'vitest';
import { BusError, DecodeError, HEADER, jsonCodec, uuidv7 } from '../src/index.js';

describe('jsonCodec', () => {
  const codec = jsonCodec({ source: 'live-app' });

  it('round-trips an envelope through CloudEvents binary-mode headers', () => {
    const envelope = { id: uuidv7(), event: 'anchor.income', payload: { anchorId: 'a1', amount: 30 }, publishedAt: 1_764_000_000_123, headers: { traceparent: 'tp' }, key: 'a1' };
    const record = codec.encode(envelope);
    expect(record.key).toBe('a1');
    expect(record.headers).toMatchObject({
      [HEADER.specVersion]: '1.0',
      [HEADER.id]: envelope.id,
      [HEADER.type]: 'anchor.income',
      [HEADER.time]: '2025-11-24T16:00:00.123Z',
      [HEADER.source]: 'live-app',
      [HEADER.contentType]: 'application/json',
      traceparent: 'tp',
    });
    expect(Buffer.from(record.value).toString()).toBe('{"anchorId":"a1","amount":30}');
    expect(codec.decode(record)).toEqual({ ...envelope, source: 'live-app' });
    expect(codec.decode({ ...record, value: Buffer.from(record.value).toString() }).payload).toEqual(envelope.payload);
    expect(codec.peekEvent(record)).toBe('anchor.income');
  });

  it('rejects what is not an envelope with a DecodeError naming the problem', () => {
    const good = codec.encode({ id: 'x', event: 'e', payload: 1, publishedAt: 0, headers: {} });
    const cases: [Record<string, string>, string | Uint8Array, RegExp][] = [
      [{}, '1', /missing header "ce_id"/],
      [{ ...good.headers, [HEADER.type]: '' }, '1', /missing header "ce_type"/],
      [{ ...good.headers, [HEADER.time]: 'yesterday' }, '1', /"ce_time" is not an RFC 3339 time/],
      // Date.parse takes these; RFC 3339 does not.
      [{ ...good.headers, [HEADER.time]: '0' }, '1', /"ce_time" is not an RFC 3339 time: "0"/],
      [{ ...good.headers, [HEADER.time]: '2024' }, '1', /"ce_time" is not an RFC 3339 time: "2024"/],
      [{ ...good.headers, [HEADER.time]: '1/2/2024' }, '1', /"ce_time" is not an RFC 3339 time/],
      [{ ...good.headers, [HEADER.time]: '2024-01-02' }, '1', /"ce_time" is not an RFC 3339 time/],
      [{ ...good.headers, [HEADER.time]: '2024-01-02T10:00:00' }, '1', /"ce_time" is not an RFC 3339 time/],
      [{ ...good.headers, [HEADER.time]: '2024-02-30T10:00:00Z' }, '1', /"ce_time" is not an RFC 3339 time/],
      [{ ...good.headers, [HEADER.contentType]: 'text/plain' }, '1', /content-type "text\/plain"/],
      [good.headers, '{"broken', /payload is not valid JSON/],
    ];
    for (const [headers, value, message] of cases) {
      let thrown: unknown;
      try {
        codec.decode({ headers, value });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(DecodeError);
      expect(BusError.isInstance(thrown) && thrown.code).toBe('DECODE');
      expect(BusError.isInstance(thrown) && thrown.retryable).toBe(false);
      expect((thrown as Error).message).toMatch(message);
    }
  });

  it('accepts every RFC 3339 date-time form: fraction, offset, lower-case t/z', () => {
    const good = codec.encode({ id: 'x', event: 'e', payload: 1, publishedAt: 0, headers: {} });
    for (const [time, ms] of [
      ['2024-01-02T10:00:00Z', Date.UTC(2024, 0, 2, 10)],
      ['2024-01-02t10:00:00.5z', Date.UTC(2024, 0, 2, 10, 0, 0, 500)],
      ['2024-01-02T12:00:00+02:00', Date.UTC(2024, 0, 2, 10)],
      ['2024-01-02T10:00:00.123456-00:30', Date.UTC(2024, 0, 2, 10, 30, 0, 123)],
    ] as const) {
      expect(codec.decode({ headers: { ...good.headers, [HEADER.time]: time }, value: '1' }).publishedAt).toBe(ms);
    }
  });

  it('a user header cannot overwrite the envelope attributes', () => {
    const record = codec.encode({ id: 'real', event: 'e', payload: 1, publishedAt: 0, headers: { [HEADER.id]: 'fake' } });
    expect(record.headers[HEADER.id]).toBe('real');
  });
});

describe('uuidv7', () => {
  it('is a version 7 UUID, unique and sortable by creation time', () => {
    const ids = Array.from({ length: 10_000 }, () => uuidv7());
    for (const id of ids.slice(0, 10)) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it('encodes the millisecond timestamp in its first 48 bits', () => {
    const now = Date.UTC(2026, 10, 28, 12, 0, 0, 5);
    const id = uuidv7(now + 10_000_000);
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBeGreaterThanOrEqual(now + 10_000_000);
  });
});
