import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ConfigError, OptionReader } from '@bus/core';
import { type PgPool, quoteIdent, readSchema } from './sql.js';

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Schema of the tables; created if missing. @default 'public' */
  schema?: string;
}

/** The folder of the shipped migrations (`migrations/*.sql` of this package). */
export const MIGRATIONS_DIR: string = fileURLToPath(new URL('../migrations/', import.meta.url));

/**
 * Applies the package's SQL migrations (`migrations/NNN_*.sql`, shipped in the package) that `schema`
 * has not had yet, each in its own transaction, recorded in `bus_outbox_migrations`. Safe to call from
 * many processes at once (a transaction-scoped advisory lock serialises them) and on every start.
 * Resolves the versions it applied. Prefer your own migration tool? Copy the files instead.
 */
export async function migrate(pool: PgPool, options: MigrateOptions = {}): Promise<number[]> {
  const r = new OptionReader('bus/outbox', 'migrate');
  if (typeof (pool as PgPool | undefined)?.connect !== 'function') throw new ConfigError('migrate.pool', 'must be a pg Pool', pool, 'bus/outbox');
  const schema = readSchema(r, options.schema);
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  const applied: number[] = [];
  const client = await pool.connect();
  try {
    for (const file of files) {
      const version = Number.parseInt(file, 10);
      await client.query('BEGIN');
      try {
        // One lock id for every schema: migrations are rare and short.
        await client.query("SELECT pg_advisory_xact_lock(hashtext('bus_outbox_migrate'))");
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
        await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
        await client.query('CREATE TABLE IF NOT EXISTS bus_outbox_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
        const done = await client.query('SELECT 1 FROM bus_outbox_migrations WHERE version = $1', [version]);
        if (done.rows.length === 0) {
          await client.query(await readFile(`${MIGRATIONS_DIR}${file}`, 'utf8'));
          await client.query('INSERT INTO bus_outbox_migrations (version, name) VALUES ($1, $2)', [version, file]);
          applied.push(version);
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    }
  } finally {
    client.release();
  }
  return applied;
}
