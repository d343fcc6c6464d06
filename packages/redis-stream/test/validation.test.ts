import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { createBus, DLQ_HEADER, DLQ_ISSUES_HEADER, defineEvents, ValidationError } from '@bus/core';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { redisStream } from '../src/index.js';
import { deleteKeys, nodeOf, SHARED_REDIS_URL } from './helpers/servers.js';

const exec = promisify(execFile);
const prefix = `bus-test:${randomUUID().slice(0, 8)}:`;
const node = nodeOf(SHARED_REDIS_URL);
const cli = async (...args: string[]) => (await exec('redis-cli', ['-h', node.host, '-p', String(node.port), ...args], { timeout: 5000 })).stdout.trim();

afterAll(async () => {
  await deleteKeys([node], `${prefix}*`);
});

const events = defineEvents({ 'order.created': z.object({ orderId: z.string(), amount: z.number().positive() }) });

describe('Standard Schema events on Redis Streams', () => {
  it('publish refuses an invalid payload: nothing is written to the stream', async () => {
    const topic = `orders-${randomUUID().slice(0, 6)}`;
    const bus = createBus({ events, transports: { redis: redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix }) } });
    try {
      // biome-ignore lint/suspicious/noExplicitAny: what an untyped caller could send.
      const error = await bus.publish(topic, 'order.created', { orderId: 'o1', amount: 0 } as any).catch((e: unknown) => e);
      expect(ValidationError.isInstance(error)).toBe(true);
      expect((error as ValidationError).issues.map((i) => i.path)).toEqual(['amount']);
      expect(await cli('EXISTS', `${prefix}${topic}`)).toBe('0');
    } finally {
      await bus.close();
    }
  });

  it('an entry written by redis-cli with a bad field is dead-lettered with VALIDATION and its path; valid ones are handled', async () => {
    const topic = `orders-${randomUUID().slice(0, 6)}`;
    const key = `${prefix}${topic}`;
    const xadd = (id: string, data: string) =>
      cli('XADD', key, '*', 'ce_specversion', '1.0', 'ce_id', id, 'ce_type', 'order.created', 'ce_time', '2026-12-01T12:00:00Z', 'content-type', 'application/json', '_data', data);
    await xadd('bad-1', '{"orderId":"o1","amount":"30"}');
    await xadd('good-1', '{"orderId":"o2","amount":30}');
    const bus = createBus({ events, transports: { redis: redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix }) } });
    const handled: string[] = [];
    bus.module({
      name: 'billing',
      pollIntervalMs: 100,
      consumers: { ledger: { topics: [topic], events: ['order.created'] } },
      handler: (ctx) => {
        handled.push(ctx.payload.orderId);
      },
    });
    const redis = new Redis(SHARED_REDIS_URL);
    try {
      await bus.start();
      const deadline = Date.now() + 10_000;
      let dead: string[][] = [];
      while ((dead.length < 1 || handled.length < 1) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        dead = (await redis.xrange(`${key}.dlq`, '-', '+')).map(([, fields]) => fields);
      }
      expect(handled).toEqual(['o2']);
      expect(dead).toHaveLength(1);
      const fields: Record<string, string> = {};
      for (let i = 0; i < (dead[0]?.length ?? 0); i += 2) fields[dead[0]?.[i] as string] = dead[0]?.[i + 1] as string;
      expect(fields.ce_id).toBe('bad-1');
      expect(fields[DLQ_HEADER.error]).toBe('VALIDATION');
      expect(JSON.parse(fields[DLQ_ISSUES_HEADER] ?? '[]')).toEqual([{ path: 'amount', message: expect.any(String) }]);
      expect(fields._data).toBe('{"orderId":"o1","amount":"30"}');
    } finally {
      await bus.close();
      redis.disconnect();
    }
  });
});
