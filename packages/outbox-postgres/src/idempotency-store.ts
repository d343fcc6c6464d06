import { type IdempotencyState, type IdempotencyStore, OptionReader } from '@bus/core';
import { isQueryable, type Queryable, quoteIdent, readSchema } from './sql.js';

/** Options of {@link pgIdempotencyStore}. */
export interface PgIdempotencyStoreOptions {
  /** A pool (`pg.Pool`) or any client with `query`; never closed by the store. */
  pool: Queryable;
  /** Schema of the `bus_idempotency` table (see `migrate`). @default 'public' */
  schema?: string;
  /** How often expired records are deleted (from `complete`; at most one purge at a time). @default 60_000 */
  purgeIntervalMs?: number;
}

/** A PostgreSQL idempotency store, plus the helper to record a message in your own transaction. */
export interface PgIdempotencyStore extends IdempotencyStore {
  /**
   * Records `key` as done inside *your* transaction `tx`, with the handler's own writes: committed
   * together, so no crash can fall between the effect and the record (exactly-once effects). The
   * key is the middleware's (`${ctx.message.group}:${ctx.message.id}` by default).
   */
  completeWithin(tx: Queryable, key: string, ttlMs: number): Promise<void>;
  /** Deletes expired records now; resolves how many. */
  purge(): Promise<number>;
}

/**
 * An {@link IdempotencyStore} on PostgreSQL, one row per message in `bus_idempotency` (created by
 * `migrate`): `acquire` is one `INSERT … ON CONFLICT DO UPDATE … WHERE expires_at <= now()` (takes a
 * free or expired key), `complete` sets `done`, `extend`/`release` compare the holder's token.
 *
 * ```ts
 * middleware: [idempotent({ store: pgIdempotencyStore({ pool }) })]
 * ```
 */
export function pgIdempotencyStore(options: PgIdempotencyStoreOptions): PgIdempotencyStore {
  const r = new OptionReader('bus/outbox', 'idempotencyStore');
  const o = r.object('options', options) as Record<string, unknown>;
  if (!isQueryable(o.pool)) r.fail('pool', 'must be a pg Pool or client', o.pool);
  const table = `${quoteIdent(readSchema(r, o.schema))}.bus_idempotency`;
  const purgeIntervalMs = r.int('purgeIntervalMs', o.purgeIntervalMs, 60_000, 1);
  const pool = options.pool;
  let lastPurge = Date.now();
  let purging = false;

  // The CTE's SELECT sees the row as it was before the INSERT: `acquired` tells whether the upsert
  // took the key, `done` what held it.
  const acquireSql =
    `WITH taken AS (INSERT INTO ${table} (key, token, done, expires_at) VALUES ($1, $2, false, now() + $3 * interval '1 millisecond') ` +
    `ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, done = false, expires_at = EXCLUDED.expires_at WHERE ${table}.expires_at <= now() RETURNING 1) ` +
    `SELECT (SELECT count(*) FROM taken)::int AS acquired, (SELECT done FROM ${table} WHERE key = $1) AS done`;
  const completeSql =
    `INSERT INTO ${table} (key, token, done, expires_at) VALUES ($1, '', true, now() + $2 * interval '1 millisecond') ` +
    `ON CONFLICT (key) DO UPDATE SET done = true, expires_at = EXCLUDED.expires_at`;

  const purge = async () => {
    const { rowCount } = await pool.query(`DELETE FROM ${table} WHERE expires_at < now()`);
    return rowCount ?? 0;
  };

  return {
    name: 'postgres',
    async acquire(key, token, leaseMs): Promise<IdempotencyState> {
      const { rows } = await pool.query(acquireSql, [key, token, leaseMs]);
      const row = rows[0] as { acquired: number; done: boolean | null };
      if (row.acquired === 1) return 'acquired';
      return row.done ? 'done' : 'busy';
    },
    async extend(key, token, leaseMs) {
      const { rowCount } = await pool.query(`UPDATE ${table} SET expires_at = now() + $3 * interval '1 millisecond' WHERE key = $1 AND token = $2 AND NOT done`, [
        key,
        token,
        leaseMs,
      ]);
      return rowCount === 1;
    },
    async complete(key, _token, ttlMs) {
      await pool.query(completeSql, [key, ttlMs]);
      if (!purging && Date.now() - lastPurge >= purgeIntervalMs) {
        purging = true;
        lastPurge = Date.now();
        purge()
          .catch(() => 0)
          .finally(() => {
            purging = false;
          });
      }
    },
    async release(key, token) {
      await pool.query(`DELETE FROM ${table} WHERE key = $1 AND token = $2 AND NOT done`, [key, token]);
    },
    async completeWithin(tx, key, ttlMs) {
      await tx.query(completeSql, [key, ttlMs]);
    },
    purge,
  };
}
