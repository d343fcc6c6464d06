import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { EVENT, type Payload } from './common.js';

/**
 * What raw ioredis writes per message: the same stream entry the bus's Redis transport writes with
 * the JSON codec (the CloudEvents attributes as fields, the JSON payload under `_data`), built by
 * hand with `crypto.randomUUID()` and `Date#toISOString()`. So both sides store the same bytes per
 * entry and both pay for `JSON.stringify`.
 */
export function rawFields(payload: Payload): string[] {
  return [
    'ce_specversion',
    '1.0',
    'ce_id',
    randomUUID(),
    'ce_type',
    EVENT,
    'ce_time',
    new Date().toISOString(),
    'content-type',
    'application/json',
    '_data',
    JSON.stringify(payload),
  ];
}

export async function connectRedis(url: string): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  return client;
}

/** One pipeline of `XADD key * …fields` per record; throws if any failed. */
export async function rawPublish(client: Redis, key: string, payloads: readonly Payload[]): Promise<void> {
  const p = client.pipeline();
  for (const payload of payloads) p.xadd(key, '*', ...rawFields(payload));
  const results = await p.exec();
  for (const [error] of results ?? []) if (error) throw error;
}

/**
 * The hand-written consumer loop the bus replaces: `XREADGROUP … COUNT batch BLOCK pollMs`, parse
 * `_data`, call the handler, one `XACK` of the batch. No retry, no dead letter, no reclaim.
 */
export async function rawConsume(options: {
  client: Redis;
  key: string;
  group: string;
  consumer: string;
  batchSize: number;
  pollMs: number;
  handler: (payload: Payload) => void;
  stop: () => boolean;
}): Promise<void> {
  const { client, key, group, consumer, batchSize, pollMs, handler, stop } = options;
  await client.xgroup('CREATE', key, group, '0', 'MKSTREAM').catch((error: Error) => {
    if (!error.message.startsWith('BUSYGROUP')) throw error;
  });
  while (!stop()) {
    const reply = (await client.xreadgroup('GROUP', group, consumer, 'COUNT', batchSize, 'BLOCK', pollMs, 'STREAMS', key, '>')) as
      | [string, [string, string[]][]][]
      | null;
    if (!reply) continue;
    for (const [stream, entries] of reply) {
      const ids: string[] = [];
      for (const [id, fields] of entries) {
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (fields[i] === '_data') handler(JSON.parse(fields[i + 1] as string) as Payload);
        }
        ids.push(id);
      }
      if (ids.length > 0) await client.xack(stream, group, ...ids);
    }
  }
}

/** Deletes every key matching `pattern` (SCAN + UNLINK, never KEYS or FLUSH: the Redis is shared). */
export async function deleteKeys(client: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await client.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}
