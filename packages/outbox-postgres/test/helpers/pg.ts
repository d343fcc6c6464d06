import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';

/** The shared PostgreSQL of the test environment (trust auth, database `test`). */
export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A pool on the shared database and a schema name of this test's own (dropped by `drop`). */
export function testDatabase(max = 10) {
  const schema = `bus_test_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const pool = new pg.Pool({ connectionString: PG_URL, max });
  pool.on('error', () => {});
  return {
    schema,
    pool,
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
      await pool.end();
    },
  };
}

/** Every entry of a stream (written by the Redis transport), oldest first: envelope id, key, payload. */
export async function readStream(redisUrl: string, stream: string): Promise<{ id: string; key: string | undefined; payload: unknown }[]> {
  const redis = new Redis(redisUrl);
  try {
    const out: { id: string; key: string | undefined; payload: unknown }[] = [];
    let start = '-';
    for (;;) {
      const entries = await redis.xrange(stream, start, '+', 'COUNT', 5000);
      for (const [, fields] of entries) {
        const f: Record<string, string> = {};
        for (let i = 0; i < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
        out.push({ id: f.ce_id as string, key: f._key, payload: JSON.parse(f._data ?? 'null') });
      }
      if (entries.length < 5000) return out;
      start = `(${(entries[entries.length - 1] as [string, string[]])[0]}`;
    }
  } finally {
    redis.disconnect();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
