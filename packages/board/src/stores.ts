import { randomUUID } from 'node:crypto';
import type { Transport } from '@bus/core';
import { readTopic, type StoredRecord } from './dead-letters.js';

/** One page of a dead-letter topic, newest first. */
export interface DeadLetterPage {
  records: StoredRecord[];
  /** Records in the topic, when the store can tell. */
  total: number | undefined;
  /** Cursor of the next (older) page; undefined on the last page. */
  next: string | undefined;
}

/**
 * How the board reads and deletes the records of a dead-letter topic. Reading a topic page by page,
 * a record by its position, and deleting single records are not in the `Transport` contract (a
 * consumer group only moves forward), so each broker gets its own store: {@link redisDeadLetters}
 * (XREVRANGE, XRANGE, XDEL) or {@link scanDeadLetters} (any transport: reads the topic with a
 * throwaway consumer group; no delete). Pass your own with `BoardOptions.deadLetters`.
 */
export interface DeadLetterStore {
  /** Why single records cannot be deleted; undefined when {@link DeadLetterStore.delete} works. */
  readonly deleteUnavailable: string | undefined;
  /** A page of records, newest first, starting after `cursor` (a value of {@link DeadLetterPage.next}). */
  page(topic: string, options: { cursor?: string | undefined; limit: number }): Promise<DeadLetterPage>;
  /** The records at these positions (those that exist), in the order given. */
  get(topic: string, positions: readonly string[]): Promise<StoredRecord[]>;
  /** Up to `max` records, newest first where the store can tell (for "find"). */
  scan(topic: string, max: number): Promise<StoredRecord[]>;
  /** Deletes the records at these positions; resolves with how many were deleted. */
  delete(topic: string, positions: readonly string[]): Promise<number>;
}

/** The part of `@bus/redis-stream`'s transport a Redis store needs (duck-typed: no dependency on it). */
interface RedisLike extends Transport {
  streamKey(topic: string): string;
  withClient<R>(fn: (client: RedisCommands) => Promise<R>): Promise<R>;
  readonly fields?: { value: string; key: string };
}

type RawEntry = [Buffer, Buffer[]];
interface RedisCommands {
  xrevrangeBuffer(key: string, end: string, start: string, count: 'COUNT', n: number): Promise<RawEntry[]>;
  xrangeBuffer(key: string, start: string, end: string): Promise<RawEntry[]>;
  xdel(key: string, ...ids: string[]): Promise<number>;
  xlen(key: string): Promise<number>;
}

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

/** Whether `transport` is a `@bus/redis-stream` transport (it exposes `withClient` and `streamKey`). */
export function isRedisTransport(transport: Transport): boolean {
  const t = transport as Partial<RedisLike>;
  return typeof t.withClient === 'function' && typeof t.streamKey === 'function';
}

/**
 * The store of a `@bus/redis-stream` transport: pages with `XREVRANGE` (exclusive cursor, Redis
 * 6.2+), looks up with `XRANGE id id`, deletes with `XDEL`. Binary-safe (values stay Buffers).
 */
export function redisDeadLetters(transport: Transport): DeadLetterStore {
  if (!isRedisTransport(transport)) throw new TypeError('[bus/board] redisDeadLetters needs a @bus/redis-stream transport');
  const t = transport as RedisLike;
  const fields = t.fields ?? { value: '_data', key: '_key' };
  const decode = ([id, raw]: RawEntry): StoredRecord => {
    const headers: Record<string, string> = {};
    let value: Buffer | string = Buffer.alloc(0);
    let key: string | undefined;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = String(raw[i]);
      const v = raw[i + 1] as Buffer;
      if (name === fields.value) value = v;
      else if (name === fields.key) key = v.toString();
      else headers[name] = v.toString();
    }
    return key === undefined ? { id: id.toString(), value, headers } : { id: id.toString(), key, value, headers };
  };
  const valid = (positions: readonly string[]) => positions.filter((p) => STREAM_ID.test(p));
  return {
    deleteUnavailable: undefined,
    page: (topic, { cursor, limit }) =>
      t.withClient(async (c) => {
        const key = t.streamKey(topic);
        const start = cursor && STREAM_ID.test(cursor) ? `(${cursor}` : '+';
        const [entries, total] = await Promise.all([c.xrevrangeBuffer(key, start, '-', 'COUNT', limit + 1), c.xlen(key)]);
        const records = entries.slice(0, limit).map(decode);
        return { records, total, next: entries.length > limit ? records[records.length - 1]?.id : undefined };
      }),
    get: (topic, positions) =>
      t.withClient(async (c) => {
        const key = t.streamKey(topic);
        const found = await Promise.all(valid(positions).map((p) => c.xrangeBuffer(key, p, p)));
        return found.flat().map(decode);
      }),
    scan: (topic, max) => t.withClient(async (c) => (await c.xrevrangeBuffer(t.streamKey(topic), '+', '-', 'COUNT', max)).map(decode)),
    delete: async (topic, positions) => {
      const ids = valid(positions);
      if (ids.length === 0) return 0;
      return t.withClient((c) => c.xdel(t.streamKey(topic), ...ids));
    },
  };
}

/** Options of {@link scanDeadLetters}. */
export interface ScanStoreOptions {
  /** Records read from a topic at most (the earliest ones). @default 1000 */
  maxRecords?: number;
  /** How long a read topic is reused before it is read again. @default 3000 */
  cacheMs?: number;
  /** Why delete is unavailable, shown in the board. @default "this transport cannot delete single records" */
  deleteUnavailable?: string;
}

/** Why the board cannot delete dead letters on Kafka. */
export const KAFKA_DELETE_UNAVAILABLE =
  'Kafka cannot delete single records: a topic is an append-only log that only shrinks by retention or by deleting every record before an offset. Replayed dead letters stay; the overview counts those not replayed yet.';

/**
 * A store for any transport: reads the whole topic (up to `maxRecords`, from the earliest record)
 * with a throwaway consumer group `bus-board-<random>` (the same way `bus dlq list` does), keeps it
 * for `cacheMs`, and serves pages and look-ups from that copy. It cannot delete. On Kafka each read
 * leaves an empty consumer group behind (as `bus dlq list` does); brokers expire those
 * (`offsets.retention.minutes`).
 */
export function scanDeadLetters(transport: Transport, options: ScanStoreOptions = {}): DeadLetterStore {
  const maxRecords = options.maxRecords ?? 1000;
  const cacheMs = options.cacheMs ?? 3000;
  const cache = new Map<string, { at: number; records: Promise<StoredRecord[]> }>();
  const read = (topic: string, fresh = false): Promise<StoredRecord[]> => {
    const hit = cache.get(topic);
    if (hit && !fresh && Date.now() - hit.at < cacheMs) return hit.records;
    const records = (async () => {
      const out: StoredRecord[] = [];
      await readTopic(
        transport,
        // A group per read, deleted after it: the board reads every few seconds.
        { topic, group: `bus-board-${randomUUID().slice(0, 8)}`, limit: maxRecords, firstMessageTimeoutMs: 10_000, idleMs: 1000, throwaway: true },
        async (m) => {
          out.push(m.key === undefined ? { id: m.id, value: m.value, headers: m.headers } : { id: m.id, key: m.key, value: m.value, headers: m.headers });
          m.ack();
        },
      );
      return out.reverse();
    })();
    cache.set(topic, { at: Date.now(), records });
    records.catch(() => cache.delete(topic));
    return records;
  };
  return {
    deleteUnavailable: options.deleteUnavailable ?? 'this transport cannot delete single records',
    async page(topic, { cursor, limit }) {
      const all = await read(topic, cursor === undefined);
      const from = cursor && /^\d+$/.test(cursor) ? Number(cursor) : 0;
      const records = all.slice(from, from + limit);
      return { records, total: all.length, next: from + limit < all.length ? String(from + limit) : undefined };
    },
    async get(topic, positions) {
      let all = await read(topic);
      if (positions.some((p) => !all.some((r) => r.id === p))) all = await read(topic, true);
      return positions.flatMap((p) => all.filter((r) => r.id === p));
    },
    async scan(topic, max) {
      return (await read(topic)).slice(0, max);
    },
    async delete() {
      throw new Error(`[bus/board] ${this.deleteUnavailable}`);
    },
  };
}

/** The default store of a transport: {@link redisDeadLetters} on Redis, else {@link scanDeadLetters} (with Kafka's reason). */
export function defaultDeadLetterStore(transport: Transport): DeadLetterStore {
  if (isRedisTransport(transport)) return redisDeadLetters(transport);
  return scanDeadLetters(transport, isKafkaLike(transport) ? { deleteUnavailable: KAFKA_DELETE_UNAVAILABLE } : {});
}

/** Kafka by name, or any persistent transport ordering by key (a partitioned log). */
function isKafkaLike(transport: Transport): boolean {
  return transport.name === 'kafka' || (transport.capabilities.ordering === 'key' && transport.capabilities.persistent);
}
