import { type DelayedRecord, type Logger, type Metrics, type PublishResult, sleep, uuidv7 } from '@bus/core';
import { keySlot, messageOf, toBusError } from './client.js';
import { type Command, num, pipeline } from './commands.js';
import type { RedisClient, ResolvedOptions } from './options.js';
import { toFields } from './wire.js';

/**
 * Moves the due entries of a topic's sorted set into its stream, atomically: ZRANGEBYSCORE of what is
 * due by the server's clock (`TIME`), one XADD per entry (with the stream's trimming arguments), and
 * ZREM of each moved entry, all in one script, so each entry reaches the stream exactly once whichever
 * process runs it and whenever one crashes. A member is `<uuid>|` followed by the entry's fields, each
 * as `<byte length>:<bytes>`. Returns moved count, the next due score (-1: none), the server time in ms
 * and the entries still waiting.
 */
const MOVE_DUE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(due) do
  local args = { 'XADD', KEYS[2] }
  for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
  args[#args + 1] = '*'
  local pos = string.find(m, '|', 1, true) + 1
  local len = #m
  while pos <= len do
    local colon = string.find(m, ':', pos, true)
    local n = tonumber(string.sub(m, pos, colon - 1))
    args[#args + 1] = string.sub(m, colon + 1, colon + n)
    pos = colon + n + 1
  end
  redis.call(unpack(args))
  redis.call('ZREM', KEYS[1], m)
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local nxt = -1
if head[2] then nxt = tonumber(head[2]) end
return { #due, nxt, now, redis.call('ZCARD', KEYS[1]) }`;

/** Entries moved per script call: bounds the time the script holds the server. */
const MOVE_BATCH = 500;

/**
 * The sorted set holding a stream's delayed entries: `<stream>:bus-delayed`, or `{<stream>}:bus-delayed`
 * when only the hash tag puts it in the stream's Cluster slot (the move script touches both keys).
 */
export function delayedKey(streamKey: string): string {
  const plain = `${streamKey}:bus-delayed`;
  if (keySlot(plain) === keySlot(streamKey)) return plain;
  return `{${streamKey}}:bus-delayed`;
}

/** A delayed record as a sorted-set member (see {@link MOVE_DUE}). */
export function encodeMember(record: DelayedRecord, o: ResolvedOptions): Buffer {
  const fields = toFields(record, o.fields, o.name);
  const parts: Buffer[] = [Buffer.from(`${uuidv7()}|`)];
  for (const field of fields) {
    const bytes = typeof field === 'string' ? Buffer.from(field) : field;
    parts.push(Buffer.from(`${bytes.length}:`), bytes);
  }
  return Buffer.concat(parts);
}

/** `ZADD` of delayed records into the topic's sorted set, in one round trip. */
export async function addDelayed(
  client: RedisClient,
  streamKey: string,
  topic: string,
  records: readonly DelayedRecord[],
  o: ResolvedOptions,
): Promise<PublishResult[]> {
  const results: PublishResult[] = new Array(records.length);
  const commands: Command[] = [];
  const index: number[] = [];
  const key = delayedKey(streamKey);
  records.forEach((record, i) => {
    try {
      commands.push(['ZADD', key, Math.ceil(record.deliverAt), encodeMember(record, o)]);
      index.push(i);
    } catch (error) {
      results[i] = { ok: false, error: toBusError(error, o.name, `could not publish a delayed record to "${topic}"`) };
    }
  });
  if (commands.length === 0) return results;
  const replies = await pipeline(client, commands);
  replies.forEach((reply, j) => {
    const i = index[j] as number;
    const member = (commands[j] as Command)[3] as Buffer;
    results[i] = reply.error
      ? { ok: false, error: toBusError(reply.error, o.name, `ZADD to "${key}" failed`) }
      : { ok: true, id: member.subarray(0, member.indexOf(0x7c)).toString() };
  });
  return results;
}

/**
 * Moves a topic's due delayed entries into its stream while at least one subscription of this
 * process reads the topic (reference counted). Every subscribed process runs one per topic; the
 * script makes their moves exclusive. It sleeps until the earliest due time it knows of, and at most
 * `delayPollMs` (a new entry may be due sooner).
 */
export class DelayMover {
  private refs = 0;
  private stop = new AbortController();
  private loop: Promise<void> | undefined;
  /** Ends the current sleep early (a delayed publish from this process may be due sooner). */
  private wakeUp: (() => void) | undefined;

  constructor(
    private readonly topic: string,
    private readonly streamKey: string,
    private readonly o: ResolvedOptions,
    private readonly withClient: <R>(fn: (client: RedisClient) => Promise<R>) => Promise<R>,
    private readonly trimArgs: () => (string | number)[],
    private readonly metrics: () => Metrics,
    private readonly log: () => Logger,
  ) {}

  acquire(): void {
    if (this.refs++ === 0) {
      this.stop = new AbortController();
      this.loop = this.run(this.stop.signal);
    }
  }

  /** Drops one reference; the last one stops the loop. */
  async release(): Promise<void> {
    if (this.refs === 0 || --this.refs > 0) return;
    this.stop.abort();
    await this.loop;
  }

  /** A delayed record was just stored by this process: look again now rather than after the sleep. */
  wake(): void {
    this.wakeUp?.();
  }

  /** Stops the loop whatever the references (the transport is closing). */
  async halt(): Promise<void> {
    this.refs = 0;
    this.stop.abort();
    await this.loop;
  }

  /** Moves what is due now; the wait until the next look, in ms. */
  async moveOnce(): Promise<number> {
    const key = delayedKey(this.streamKey);
    const reply = (await this.withClient((client) =>
      client.eval(MOVE_DUE, 2, key, this.streamKey, MOVE_BATCH, ...this.trimArgs()),
    )) as unknown[];
    const moved = num(reply[0]) ?? 0;
    const next = num(reply[1]) ?? -1;
    const now = num(reply[2]) ?? Date.now();
    this.metrics().delayedWaiting({ transport: this.o.name, topic: this.topic }, num(reply[3]) ?? 0);
    if (moved >= MOVE_BATCH) return 0;
    if (next < 0) return this.o.delayPollMs;
    return Math.max(0, Math.min(this.o.delayPollMs, next - now));
  }

  private async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      let wait: number;
      try {
        wait = await this.moveOnce();
        failures = 0;
      } catch (error) {
        failures++;
        if (failures === 1 || failures % 50 === 0) {
          this.log().warn('could not move due delayed messages; retrying', { topic: this.topic, failures, error: messageOf(error) });
        }
        wait = Math.min(100 * 2 ** Math.min(failures, 5), 2000);
      }
      if (wait > 0) {
        const nap = new AbortController();
        const onStop = () => nap.abort();
        signal.addEventListener('abort', onStop, { once: true });
        this.wakeUp = onStop;
        await sleep(wait, nap.signal);
        this.wakeUp = undefined;
        signal.removeEventListener('abort', onStop);
      } else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}
