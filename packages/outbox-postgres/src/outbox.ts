import {
  type Bus,
  type Codec,
  ConfigError,
  type Envelope,
  type EventDefinitions,
  type EventMap,
  type EventName,
  type Headers,
  type InferEvents,
  jsonCodec,
  type Logger,
  OptionReader,
  uuidv7,
  validatePayload,
} from '@bus/core';
import { type Relay, type RelayOptions, startRelay } from './relay.js';
import { isQueryable, type PgPool, type Queryable, quoteIdent, readSchema, readStats } from './sql.js';

/** Options of {@link pgOutbox}. */
export interface PgOutboxOptions {
  /** The pool the relay and `stats()` use (`pg.Pool`). `publish` uses the client you give it. */
  pool: PgPool;
  /** Schema of the `bus_outbox` table (see {@link migrate}). @default 'public' */
  schema?: string;
  /** Encodes envelopes into the stored bytes: use the bus's codec. @default jsonCodec({ source }) */
  codec?: Codec;
  /** Producer name written into every envelope (`ce_source`). @default omitted */
  source?: string;
  /** Event schemas (from `defineEvents`): payloads are validated before they are written. @default no validation */
  events?: EventDefinitions;
  /** Channel of the `NOTIFY` sent with each publish, which wakes the relays at commit. `false`: none (relays poll). @default 'bus_outbox' */
  notify?: string | false;
  /** @default silentLogger */
  logger?: Logger;
}

/** Options of {@link PgOutbox.publish}. */
export interface OutboxPublishOptions {
  /** Ordering / partition key: rows of one key are sent in the order they were written. */
  key?: string;
  headers?: Headers;
  /** Transport name on the relaying bus. @default the bus's default transport */
  transport?: string;
}

/** Messages waiting in the outbox. */
export interface OutboxStats {
  /** Unsent rows. */
  backlog: number;
  /** Age of the oldest unsent row in milliseconds (0 when empty). */
  oldestAgeMs: number;
}

/** A transactional outbox on PostgreSQL; see {@link pgOutbox}. */
export interface PgOutbox<M extends EventMap> {
  /**
   * Writes one message into the outbox with `tx`, the client of *your* transaction: it is sent if and
   * only if that transaction commits. The payload is validated (with `events`) and encoded now, with
   * the envelope id it will carry. Resolves the envelope id.
   */
  publish<E extends EventName<M>>(tx: Queryable, topic: string, event: E, payload: M[E], options?: OutboxPublishOptions): Promise<{ id: string }>;
  /**
   * Starts a relay forwarding committed rows to `bus`'s transports (in the worker processes; several
   * relays at once are safe). Close it before the bus.
   */
  relay(bus: Pick<Bus<M>, 'transports' | 'defaultTransport'>, options?: RelayOptions): Relay;
  /** Backlog and age of the oldest unsent row, for metrics. */
  stats(): Promise<OutboxStats>;
  /** The `bus_outbox` table, schema-qualified and quoted. */
  readonly table: string;
}

/**
 * A transactional outbox on PostgreSQL (client `pg`). Run {@link migrate} once (or ship
 * `migrations/*.sql` with your own tool), then publish in the transaction of your database write;
 * the relay forwards committed rows to the broker:
 *
 * ```ts
 * const outbox = pgOutbox({ pool, events: orderEvents });
 * const client = await pool.connect();
 * await client.query('BEGIN');
 * await client.query('INSERT INTO orders …');
 * await outbox.publish(client, 'orders', 'order.created', { orderId }, { key: orderId });
 * await client.query('COMMIT');
 * // in the workers:
 * const relay = outbox.relay(bus);
 * ```
 *
 * Guarantees: rows of rolled-back transactions never go out; a committed row goes out at least once
 * (a relay that dies between sending and deleting the row leaves it for the next relay: a duplicate,
 * never a loss; the `idempotent` middleware absorbs it); rows of one key go out in the order they were
 * written. Creates no connection itself.
 */
export function pgOutbox<D extends EventDefinitions>(options: PgOutboxOptions & { events: D }): PgOutbox<InferEvents<D>>;
export function pgOutbox<M extends EventMap = EventMap>(options: PgOutboxOptions): PgOutbox<M>;
export function pgOutbox<M extends EventMap = EventMap>(options: PgOutboxOptions): PgOutbox<M> {
  const r = new OptionReader('bus/outbox', 'outbox');
  const o = r.closed(r.object('options', options), ['pool', 'schema', 'codec', 'source', 'events', 'notify', 'logger']) as Record<string, unknown>;
  if (typeof (o.pool as PgPool | undefined)?.connect !== 'function' || !isQueryable(o.pool)) r.fail('pool', 'must be a pg Pool', o.pool);
  const schema = readSchema(r, o.schema);
  const codec = (o.codec as Codec | undefined) ?? jsonCodec(options.source === undefined ? {} : { source: options.source });
  if (typeof codec.encode !== 'function') r.fail('codec', 'must be a Codec', o.codec);
  const notify = o.notify === false ? false : r.string('notify', o.notify, 'bus_outbox');
  const events = options.events;
  if (events !== undefined && events['~bus'] !== 'events') r.fail('events', 'must be made by defineEvents()', events);
  const table = `${quoteIdent(schema)}.bus_outbox`;
  // With NOTIFY, one statement (one round trip): the notification is delivered at commit, once per
  // transaction and channel (PostgreSQL folds identical ones).
  const insertRow = `INSERT INTO ${table} (id, transport, topic, key, headers, value) VALUES ($1, $2, $3, $4, $5, $6)`;
  const insert = notify ? `WITH row AS (${insertRow} RETURNING 1) SELECT pg_notify($7, '') FROM row` : insertRow;

  return {
    table,
    async publish(tx, topic, event, payload, opts = {}) {
      if (!isQueryable(tx)) throw new ConfigError('outbox.publish.tx', 'must be a pg client in a transaction', tx, 'bus/outbox');
      if (typeof topic !== 'string' || topic.length === 0) throw new ConfigError('outbox.publish.topic', 'must be a non-empty string', topic, 'bus/outbox');
      if (events) await validatePayload(events, event, payload);
      const envelope: Envelope = { id: uuidv7(), event, payload, publishedAt: Date.now(), headers: { ...opts.headers } };
      if (opts.key !== undefined) envelope.key = opts.key;
      if (options.source !== undefined) envelope.source = options.source;
      const record = codec.encode(envelope);
      const value = typeof record.value === 'string' ? Buffer.from(record.value) : Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength);
      const values: unknown[] = [envelope.id, opts.transport ?? null, topic, record.key ?? null, JSON.stringify(record.headers), value];
      if (notify) values.push(notify);
      await tx.query(insert, values);
      return { id: envelope.id };
    },
    relay(bus, relayOptions = {}) {
      return startRelay({ pool: options.pool, table, notify, bus, logger: options.logger }, relayOptions);
    },
    stats: () => readStats(options.pool, table),
  };
}
