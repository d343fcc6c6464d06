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
    // One command (the usual XACK of a batch): a plain call skips building a Pipeline (and the
    // command is spread as it is, not copied first).
    const command = commands[0] as Command;
    try {
      return [{ value: await (buffers ? client.callBuffer(...command) : client.call(...command)) }];
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

/** Calls `each` for every entry of `[[id, [field, value, …]], …]`, `fields` null for a deleted entry. */
function eachEntry(value: unknown, each: (id: string, fields: (Buffer | string)[] | null) => void): void {
  if (!Array.isArray(value)) return;
  for (let i = 0; i < value.length; i++) {
    const [id, fields] = value[i] as [Buffer | string, (Buffer | string)[] | null];
    each(String(id), Array.isArray(fields) ? fields : null);
  }
}

/** Parses `[[id, [field, value, …]], …]`. */
export function parseEntries(value: unknown): RawEntry[] {
  const entries: RawEntry[] = [];
  eachEntry(value, (id, fields) => entries.push({ id, fields }));
  return entries;
}

/**
 * Calls `each` for every entry of an XREADGROUP reply (RESP2 `[[key, entries], …]`, or a RESP3 map),
 * with `fields` null for a deleted entry. No intermediate objects: the read path builds its own
 * record per entry straight from the reply.
 */
export function forEachEntry(value: unknown, each: (key: string, id: string, fields: (Buffer | string)[] | null) => void): void {
  if (value === null || value === undefined) return;
  const streamEntries = (key: string, entries: unknown) => eachEntry(entries, (id, fields) => each(key, id, fields));
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const [key, entries] = value[i] as [Buffer | string, unknown];
      streamEntries(String(key), entries);
    }
  } else if (value instanceof Map) {
    for (const [key, entries] of value) streamEntries(String(key), entries);
  } else if (typeof value === 'object') {
    for (const [key, entries] of Object.entries(value)) streamEntries(key, entries);
  }
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
