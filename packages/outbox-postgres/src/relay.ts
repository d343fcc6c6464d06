import { type Bus, type EventMap, type Logger, OptionReader, silentLogger, type Transport, type WireRecord } from '@bus/core';
import type { OutboxStats } from './outbox.js';
import { type PgPool, type PooledClient, quoteIdent, readStats } from './sql.js';

/** Options of a relay (`outbox.relay(bus, options)`). */
export interface RelayOptions {
  /** Rows read, sent and removed per transaction. @default 100 */
  batchSize?: number;
  /** Longest wait between two scans when no `NOTIFY` wakes the relay. @default 1000 */
  pollIntervalMs?: number;
  /** What happens to a sent row: `delete` it, or `mark` it (`sent_at`; you purge old rows). @default 'delete' */
  afterSend?: 'delete' | 'mark';
  /** Wait after a failed batch (database or broker down), doubling up to 30 s. @default 500 */
  errorBackoffMs?: number;
  /** Called with the outbox's backlog and the age of its oldest row every `statsIntervalMs`. @default none */
  onStats?: (stats: OutboxStats) => void;
  /** @default 15000 */
  statsIntervalMs?: number;
}

/** A running relay. */
export interface Relay extends AsyncDisposable {
  /** Rows sent (and removed) by this relay so far. */
  readonly sent: number;
  /** Stops after the batch in flight (its transaction commits or rolls back); idempotent. */
  close(): Promise<void>;
}

interface RelayContext {
  pool: PgPool;
  table: string;
  notify: string | false;
  bus: Pick<Bus<EventMap>, 'transports' | 'defaultTransport'>;
  logger: Logger | undefined;
}

interface Row {
  seq: string;
  id: string;
  transport: string | null;
  topic: string;
  key: string | null;
  headers: Record<string, string>;
  value: Buffer;
}

/**
 * One relay loop. Each batch is one transaction: `SELECT … FOR UPDATE SKIP LOCKED` the oldest unsent
 * rows (other relays skip them); hold back the rows of a key that come after one of its unsent rows
 * outside the batch (held by another relay), so a key's rows go out in order; publish the rest grouped
 * by transport and topic; delete (or mark) what the broker stored; commit. A crash before the commit releases the locks and leaves every row unsent: it
 * is sent again (at least once); a rolled-back producer transaction never wrote a visible row.
 */
export function startRelay(ctx: RelayContext, options: RelayOptions): Relay {
  const r = new OptionReader('bus/outbox', 'relay');
  r.closed(r.object('options', options), ['batchSize', 'pollIntervalMs', 'afterSend', 'errorBackoffMs', 'onStats', 'statsIntervalMs']);
  const batchSize = r.int('batchSize', options.batchSize, 100, 1, 10_000);
  const pollIntervalMs = r.int('pollIntervalMs', options.pollIntervalMs, 1000, 1);
  const afterSend = r.oneOf('afterSend', options.afterSend, ['delete', 'mark'], 'delete');
  const errorBackoffMs = r.int('errorBackoffMs', options.errorBackoffMs, 500, 1);
  const statsIntervalMs = r.int('statsIntervalMs', options.statsIntervalMs, 15_000, 1);
  const onStats = r.func<(s: OutboxStats) => void>('onStats', options.onStats, true);
  const log = (ctx.logger ?? silentLogger).child({ component: 'outbox-relay' });
  const { pool, table, bus } = ctx;

  const select = `SELECT seq, id, transport, topic, key, headers, value FROM ${table} WHERE sent_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`;
  // Per key of the batch, the oldest unsent row *not* in the batch (held by another relay, or
  // committed since): rows of that key after it must wait for it.
  const gaps = `SELECT key, min(seq)::text AS gap FROM ${table} WHERE sent_at IS NULL AND key = ANY($1::text[]) AND NOT (seq = ANY($2::bigint[])) GROUP BY key`;
  const finish = afterSend === 'delete' ? `DELETE FROM ${table} WHERE seq = ANY($1::bigint[])` : `UPDATE ${table} SET sent_at = now() WHERE seq = ANY($1::bigint[])`;

  let stopped = false;
  let sent = 0;
  let wakeUp: (() => void) | undefined;
  let listener: PooledClient | undefined;
  const warnedTransports = new Set<string>();

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      }
      wakeUp = done;
    });

  const listen = async () => {
    if (!ctx.notify || listener || stopped) return;
    try {
      const client = await pool.connect();
      client.on?.('error', (error: Error) => {
        log.warn('outbox LISTEN connection failed; polling until it is back', { error });
        if (listener === client) listener = undefined;
        client.release(error);
      });
      client.on?.('notification', () => wakeUp?.());
      await client.query(`LISTEN ${quoteIdent(ctx.notify)}`);
      listener = client;
    } catch (error) {
      log.warn('could not LISTEN for outbox notifications; polling', { error });
    }
  };

  /** Resolves rows fetched and whether some were held back for order. */
  const relayBatch = async (): Promise<{ fetched: number; heldBack: boolean }> => {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const { rows } = (await client.query(select, [batchSize])) as { rows: Row[] };
      if (rows.length === 0) {
        await client.query('COMMIT');
        return { fetched: 0, heldBack: false };
      }
      const keys = new Set<string>();
      for (const row of rows) if (row.key !== null) keys.add(row.key);
      let sendable = rows;
      if (keys.size > 0) {
        const { rows: found } = (await client.query(gaps, [[...keys], rows.map((row) => row.seq)])) as { rows: { key: string; gap: string }[] };
        if (found.length > 0) {
          const gapOf = new Map(found.map((g) => [g.key, BigInt(g.gap)]));
          sendable = rows.filter((row) => {
            const gap = row.key === null ? undefined : gapOf.get(row.key);
            return gap === undefined || BigInt(row.seq) < gap;
          });
        }
      }
      const groups = new Map<string, { transport: Transport | undefined; name: string; topic: string; rows: Row[] }>();
      for (const row of sendable) {
        const name = row.transport ?? bus.defaultTransport;
        const id = `${name}\u0000${row.topic}`;
        let group = groups.get(id);
        if (!group) {
          group = { transport: bus.transports[name], name, topic: row.topic, rows: [] };
          groups.set(id, group);
        }
        group.rows.push(row);
      }
      const done: string[] = [];
      await Promise.all(
        [...groups.values()].map(async (group) => {
          if (!group.transport) {
            if (!warnedTransports.has(group.name)) log.error('outbox rows name a transport the bus does not have; they stay unsent', { transport: group.name });
            warnedTransports.add(group.name);
            return;
          }
          const records = group.rows.map((row): WireRecord => (row.key === null ? { value: row.value, headers: row.headers } : { key: row.key, value: row.value, headers: row.headers }));
          const results = await group.transport.publish(group.topic, records);
          results.forEach((result, i) => {
            if (result.ok) done.push((group.rows[i] as Row).seq);
            else log.warn('broker refused an outbox row; it stays for the next scan', { topic: group.topic, id: group.rows[i]?.id, error: result.error });
          });
        }),
      );
      if (done.length > 0) await client.query(finish, [done]);
      await client.query('COMMIT');
      sent += done.length;
      return { fetched: rows.length, heldBack: sendable.length < rows.length };
    } catch (error) {
      broken = error as Error;
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      // A connection whose transaction state is unknown is not given back to the pool.
      client.release(broken);
    }
  };

  const loop = (async () => {
    let backoff = errorBackoffMs;
    while (!stopped) {
      await listen();
      let result: { fetched: number; heldBack: boolean };
      try {
        result = await relayBatch();
        backoff = errorBackoffMs;
      } catch (error) {
        log.error('outbox relay batch failed; retrying', { error, backoffMs: backoff });
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 30_000);
        continue;
      }
      if (stopped) break;
      if (result.fetched === batchSize) continue;
      // Rows held back wait for another relay's commit, which sends no NOTIFY: look again soon.
      await sleep(result.heldBack ? Math.min(pollIntervalMs, 20) : pollIntervalMs);
    }
  })();

  let statsTimer: NodeJS.Timeout | undefined;
  if (onStats) {
    const report = async () => {
      try {
        onStats(await readStats(pool, table));
      } catch (error) {
        log.debug('could not read outbox stats', { error });
      }
    };
    statsTimer = setInterval(report, statsIntervalMs);
    statsTimer.unref();
    void report();
  }

  let closing: Promise<void> | undefined;
  return {
    get sent() {
      return sent;
    },
    close() {
      closing ??= (async () => {
        stopped = true;
        clearInterval(statsTimer);
        wakeUp?.();
        await loop;
        const l = listener;
        listener = undefined;
        // Destroyed rather than returned: it is still LISTENing.
        l?.release(true);
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}
