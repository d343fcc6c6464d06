// The few Redis test helpers the interop tests need (the driver's own live in packages/redis-stream/test/helpers).
import { Redis } from 'ioredis';

export const SHARED_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export function nodeOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379) };
}

/** Deletes every key matching `pattern` on the given standalone servers. */
export async function deleteKeys(nodes: { host: string; port: number }[], pattern: string): Promise<number> {
  let deleted = 0;
  for (const node of nodes) {
    const client = new Redis({ ...node, lazyConnect: true, maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    try {
      await client.connect();
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) deleted += await client.del(key);
      } while (cursor !== '0');
    } catch {
      // The server is gone already: nothing to clean.
    } finally {
      client.disconnect();
    }
  }
  return deleted;
}
