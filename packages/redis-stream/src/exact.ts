import type { Command } from './commands.js';
import { pipeline } from './commands.js';
import type { RedisClient } from './options.js';

/** What ioredis's string replies put in place of bytes that are not UTF-8. */
const REPLACEMENT = '\uFFFD';

/** A delivered stream entry, as the subscription holds it. */
export interface ExactEntry {
  key: string;
  id: string;
  fields: (Buffer | string)[];
}

/**
 * Makes the value field of `entries` byte-exact where string replies may have altered it.
 *
 * Entries are read as strings (ioredis decodes them in its parser, about twice as fast as Buffers);
 * bytes that are not UTF-8 come back as U+FFFD. An entry whose value holds U+FFFD is read again as
 * Buffers (`XRANGE key id id`, one pipeline for the batch) and its fields replaced, so handlers, the
 * codec and the dead letter (and `bus dlq replay` after it) see the original bytes. The cost on the
 * common path is one `indexOf` per value; a value with a genuine U+FFFD is re-read for nothing.
 *
 * @returns the number of entries re-read
 */
export async function restoreBinaryValues(
  client: RedisClient,
  entries: readonly ExactEntry[],
  valueField: string,
  guard: <T>(promise: Promise<T>) => Promise<T>,
): Promise<number> {
  let suspects: ExactEntry[] | undefined;
  for (const entry of entries) {
    const fields = entry.fields;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const value = fields[i + 1];
      if (typeof value === 'string' && fields[i] === valueField && value.includes(REPLACEMENT)) {
        (suspects ??= []).push(entry);
        break;
      }
    }
  }
  if (!suspects) return 0;
  const replies = await guard(pipeline(client, suspects.map((e): Command => ['XRANGE', e.key, e.id, e.id]), true));
  suspects.forEach((entry, i) => {
    const reply = replies[i];
    if (reply?.error) throw reply.error;
    const [found] = (reply?.value as [Buffer, Buffer[]][] | undefined) ?? [];
    // Deleted since it was read: keep what was read.
    if (found && Array.isArray(found[1])) entry.fields = found[1];
  });
  return suspects.length;
}
