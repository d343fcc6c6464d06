import type { RedisClient } from './options.js';
import { isReplyError } from './client.js';

/** One command: name and arguments. */
export type Command = [name: string, ...args: (string | Buffer | number)[]];

/** One reply of a pipeline: the error, or the value. */
export type Reply = { error: Error; value?: undefined } | { error?: undefined; value: unknown };

/**
 * Sends `commands` in one pipeline (one round trip; in Cluster mode every key must hash to slots of
 * one node). `buffers`: bulk replies as Buffers (binary-safe) instead of strings.
 * Rejects only when the pipeline as a whole failed (e.g. the connection is closed).
 */
export async function pipeline(client: RedisClient, commands: readonly Command[], buffers = false): Promise<Reply[]> {
  if (commands.length === 1) {
    // One command (the usual XACK of a batch): a plain call skips building a Pipeline.
    const [name, ...args] = commands[0] as Command;
    try {
      return [{ value: await (buffers ? client.callBuffer(name, ...args) : client.call(name, ...args)) }];
    } catch (error) {
      if (isReplyError(error)) return [{ error: error as Error }];
      throw error;
    }
  }
  let p = client.pipeline();
  for (const [name, ...args] of commands) p = buffers ? p.callBuffer(name, ...args) : p.call(name, ...args);
  const results = await p.exec();
  if (!results) throw new Error('pipeline was discarded');
  return results.map(([error, value]) => (error ? { error } : { value }));
}

/** A stream entry as XREADGROUP / XAUTOCLAIM return it; `fields` is null for a deleted entry. */
export interface RawEntry {
  id: string;
  fields: (Buffer | string)[] | null;
}

/** Parses `[[id, [field, value, …]], …]`. */
export function parseEntries(value: unknown): RawEntry[] {
  if (!Array.isArray(value)) return [];
  return value.map((item) => {
    const [id, fields] = item as [Buffer | string, (Buffer | string)[] | null];
    return { id: String(id), fields: Array.isArray(fields) ? fields : null };
  });
}

/** Parses an XREADGROUP reply (RESP2 `[[key, entries], …]`, or a RESP3 map) into key → entries. */
export function parseRead(value: unknown): Map<string, RawEntry[]> {
  const out = new Map<string, RawEntry[]>();
  if (value === null || value === undefined) return out;
  if (Array.isArray(value)) {
    for (const item of value) {
      const [key, entries] = item as [Buffer | string, unknown];
      out.set(String(key), parseEntries(entries));
    }
  } else if (value instanceof Map) {
    for (const [key, entries] of value) out.set(String(key), parseEntries(entries));
  } else if (typeof value === 'object') {
    for (const [key, entries] of Object.entries(value)) out.set(key, parseEntries(entries));
  }
  return out;
}

/** A flat `[name, value, name, value…]` reply (or a RESP3 map) as a record with string keys. */
export function parseFlat(value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (Array.isArray(value)) {
    for (let i = 0; i + 1 < value.length; i += 2) out[String(value[i])] = value[i + 1];
  } else if (value instanceof Map) {
    for (const [k, v] of value) out[String(k)] = v;
  } else if (value && typeof value === 'object') {
    Object.assign(out, value);
  }
  return out;
}

/** A reply value as a number (`null`/missing → `undefined`). */
export function num(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  const n = Number(typeof value === 'number' ? value : String(value));
  return Number.isFinite(n) ? n : undefined;
}
