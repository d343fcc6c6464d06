import type { OptionReader } from '@bus/core';

/**
 * What the package needs of a `pg` client or pool: `query` with `$n` parameters. A `pg.Pool`, a
 * `pg.PoolClient` inside a transaction, a `pg.Client`, or a compatible driver all fit.
 */
export interface Queryable {
  // biome-ignore lint/suspicious/noExplicitAny: rows are whatever the query selects; each caller types them.
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }>;
}

/** A connection taken from a pool, given back with `release()` (`pg.PoolClient`). */
export interface PooledClient extends Queryable {
  release(error?: Error | boolean): void;
  on?(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on?(event: 'error', listener: (error: Error) => void): unknown;
}

/** A connection pool (`pg.Pool`). */
export interface PgPool extends Queryable {
  connect(): Promise<PooledClient>;
}

/** A schema name quoted as an identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Checks a schema option. @default 'public' */
export function readSchema(r: OptionReader, value: unknown): string {
  if (value === undefined) return 'public';
  const schema = r.string('schema', value);
  if (schema.length > 63) r.fail('schema', 'must be at most 63 characters (a PostgreSQL identifier)', schema);
  return schema;
}

export function isQueryable(value: unknown): value is Queryable {
  return typeof (value as Queryable | null)?.query === 'function';
}

/** Backlog and age of the oldest unsent row of an outbox table. */
export async function readStats(db: Queryable, table: string): Promise<{ backlog: number; oldestAgeMs: number }> {
  const { rows } = await db.query(
    `SELECT count(*)::bigint AS backlog, COALESCE(EXTRACT(EPOCH FROM (now() - min(created_at))) * 1000, 0)::float8 AS age FROM ${table} WHERE sent_at IS NULL`,
  );
  const row = rows[0] as { backlog: string; age: number };
  return { backlog: Number(row.backlog), oldestAgeMs: Math.max(0, Math.round(row.age)) };
}
