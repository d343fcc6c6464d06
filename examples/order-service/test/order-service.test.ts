import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { runDemo } from '../src/demo.js';

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const schemas: string[] = [];
const prefix = `bus-test:${randomUUID().slice(0, 8)}:`;

afterAll(async () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
  for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  const redis = new Redis(REDIS_URL);
  for (const key of await redis.keys(`${prefix}*`)) await redis.del(key);
  redis.disconnect();
});

describe('order-service example', () => {
  it('charges every committed order exactly once, rolled-back orders never, even when the relay sends everything twice', async () => {
    const schema = `bus_orders_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
    schemas.push(schema);
    const lines: string[] = [];
    const result = await runDemo({ pgUrl: PG_URL, redisUrl: REDIS_URL, schema, keyPrefix: prefix, orders: 40, duplicateSends: true, log: (l) => lines.push(l) });
    expect(result.committed).toHaveLength(30);
    expect(result.rolledBack).toHaveLength(10);
    expect([...result.charges.keys()].sort()).toEqual([...result.committed].sort());
    expect([...result.charges.values()].every((n) => n === 1)).toBe(true);
    expect(result.duplicatesSkipped).toBeGreaterThanOrEqual(30);
    expect(lines.at(-1)).toBe('30 orders charged (0 twice), 30 duplicate deliveries skipped');
  });
});
