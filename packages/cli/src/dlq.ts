import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DELAY_HEADER, DLQ_HEADER, HEADER, type IncomingMessage, type Transport, type WireRecord } from '@bus/core';

/**
 * The consumer group `bus dlq replay` reads dead-letter topics with. It is persistent on purpose: a
 * second replay only sends what was dead-lettered since the first, and `bus status` shows its lag as
 * the dead letters not yet replayed.
 */
export const DLQ_REPLAY_GROUP = 'bus-dlq-replay';

/** Header added to a replayed message: when it was replayed. */
export const REPLAYED_AT_HEADER = 'bus-replayed-at';

/** `live` → `live.dlq`; a name already ending in `.dlq` is kept. */
export function deadLetterTopicOf(topic: string): string {
  return topic.endsWith('.dlq') ? topic : `${topic}.dlq`;
}

/** A dead-lettered message, as `bus dlq list` shows it. */
export interface DeadLetter {
  /** Position in the dead-letter topic. */
  position: string;
  id: string | undefined;
  event: string | undefined;
  key: string | undefined;
  /** The topic it was read from (where `replay` sends it back). */
  origin: string | undefined;
  /** Its position in the origin topic. */
  originPosition: string | undefined;
  /** Consumer group whose handler gave up on it. */
  group: string | undefined;
  attempts: number | undefined;
  /** Error code or class (`HANDLER`, `DECODE`, `TypeError`…). */
  error: string | undefined;
  reason: string | undefined;
  deadLetteredAt: string | undefined;
  payload: string;
}

export function toDeadLetter(m: IncomingMessage): DeadLetter {
  const h = m.headers;
  const value = typeof m.value === 'string' ? m.value : Buffer.from(m.value).toString('utf8');
  const attempts = h[DLQ_HEADER.attempts];
  return {
    position: m.id,
    id: h[HEADER.id],
    event: h[HEADER.type],
    key: m.key,
    origin: h[DLQ_HEADER.topic],
    originPosition: h[DLQ_HEADER.position],
    group: h[DLQ_HEADER.group],
    attempts: attempts === undefined ? undefined : Number(attempts),
    error: h[DLQ_HEADER.error],
    reason: h[DLQ_HEADER.reason],
    deadLetteredAt: h[DLQ_HEADER.at],
    payload: value,
  };
}

interface ReadOptions {
  topic: string;
  group: string;
  limit: number;
  /** Longest wait for the first message when some are expected. */
  firstMessageTimeoutMs: number;
  /** After the first message: stop when nothing came for this long. */
  idleMs: number;
}

/**
 * Reads up to `limit` messages of `topic` with a consumer group (created at the earliest position),
 * passing each to `each`, which settles it. Stops at the group's lag as measured before (when the
 * transport reports lag), at `limit`, or when the topic stays quiet.
 */
async function readGroup(transport: Transport, options: ReadOptions, each: (m: IncomingMessage) => Promise<void>): Promise<number> {
  let expected = options.limit;
  if (transport.lag) {
    let info: Awaited<ReturnType<NonNullable<Transport['lag']>>>[number] | undefined;
    try {
      [info] = await transport.lag(options.group, [options.topic]);
    } catch (error) {
      throw new Error(`[bus/cli] cannot read "${options.topic}" (does it exist?): ${(error as Error)?.message ?? error}`, { cause: error });
    }
    if (info) expected = Math.min(expected, info.lag);
  }
  if (expected <= 0) return 0;
  let count = 0;
  let last = 0;
  let failure: unknown;
  const subscription = await transport.subscribe(
    {
      group: options.group,
      topics: [options.topic],
      batchSize: Math.min(expected, 100),
      pollIntervalMs: 250,
      startFrom: 'earliest',
      consumerName: `bus-cli-${hostname()}-${process.pid}`,
    },
    async (batch) => {
      last = Date.now();
      for (const m of batch) {
        if (count >= expected || failure !== undefined) {
          m.nack();
          continue;
        }
        try {
          await each(m);
          count++;
        } catch (error) {
          failure = error;
          m.nack();
        }
      }
    },
  );
  try {
    const started = Date.now();
    while (count < expected && failure === undefined) {
      const now = Date.now();
      if (last === 0 ? now - started > options.firstMessageTimeoutMs : now - last > options.idleMs) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await subscription.close();
  }
  if (failure !== undefined) throw failure;
  return count;
}

/**
 * `bus dlq list`: the dead letters of `topic`, read with a throwaway consumer group
 * (`bus-cli-dlq-list-<random>`, starting at the earliest message), so listing never moves the
 * replay position.
 */
export async function listDeadLetters(transport: Transport, topic: string, limit: number, waitMs = 15_000): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  await readGroup(
    transport,
    { topic: deadLetterTopicOf(topic), group: `bus-cli-dlq-list-${randomUUID().slice(0, 8)}`, limit, firstMessageTimeoutMs: waitMs, idleMs: 1500 },
    async (m) => {
      letters.push(toDeadLetter(m));
      m.ack();
    },
  );
  return letters;
}

/**
 * A duration such as `10m`, `30s`, `1h`, `500ms`, `2d` or plain milliseconds (`1500`), in ms.
 * @throws {Error} on anything else
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not a duration (e.g. 500ms, 30s, 10m, 1h, 2d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(match[1]) * unit);
}

/** Options of {@link replayDeadLetters}. */
export interface ReplayOptions {
  /**
   * Send the copies delayed by this many ms (the transport's delayed delivery: they reach the origin
   * topic no sooner), e.g. to replay after a fix is deployed or a dependency is back. @default 0 (at once)
   */
  delayMs?: number;
}

export interface ReplayResult {
  /** Sent back to their origin topic. */
  replayed: number;
  /** Without a `bus-dlq-topic` header (not written by the bus): acknowledged, not sent. */
  skipped: number;
}

/**
 * `bus dlq replay`: sends each dead letter of `topic` not replayed yet back to its origin topic (the
 * `bus-dlq-topic` header), with the same id, key, payload and headers minus the `bus-dlq-*` ones and the
 * retry state (`bus-attempt`, `bus-retry-topic`, `bus-parked`, `bus-deliver-at`), and
 * acknowledges it in the {@link DLQ_REPLAY_GROUP} group once the broker stored the copy (with
 * `options.delayMs`, stored for delayed delivery: `bus dlq replay <topic> --delay 10m`). Every
 * consumer group of the origin topic receives it again. A failed publish stops the replay (the rest
 * stays for the next one) and throws.
 */
export async function replayDeadLetters(
  transport: Transport,
  topic: string,
  limit: number,
  onReplayed: (letter: DeadLetter) => void = () => {},
  waitMs = 15_000,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const result: ReplayResult = { replayed: 0, skipped: 0 };
  const delayMs = options.delayMs ?? 0;
  if (delayMs > 0 && !(transport.capabilities.delays && transport.publishDelayed)) {
    throw new Error(`[bus/cli] transport "${transport.name}" has no delayed delivery; replay without a delay`);
  }
  await readGroup(
    transport,
    { topic: deadLetterTopicOf(topic), group: DLQ_REPLAY_GROUP, limit, firstMessageTimeoutMs: waitMs, idleMs: 1500 },
    async (m) => {
      const letter = toDeadLetter(m);
      if (!letter.origin) {
        result.skipped++;
        m.ack();
        return;
      }
      const headers: Record<string, string> = {};
      // The dead letter's reason headers go, and so does the retry state of a broker-side retry: the
      // replayed copy starts again at attempt 1 (and is due when this replay says).
      const dlqHeaders = new Set<string>([...Object.values(DLQ_HEADER), ...Object.values(DELAY_HEADER)]);
      for (const [name, value] of Object.entries(m.headers)) if (!dlqHeaders.has(name)) headers[name] = value;
      headers[REPLAYED_AT_HEADER] = new Date().toISOString();
      const deliverAt = delayMs > 0 ? Date.now() + delayMs : undefined;
      if (deliverAt !== undefined) headers[DELAY_HEADER.deliverAt] = String(deliverAt);
      const record: WireRecord = m.key === undefined ? { value: m.value, headers } : { key: m.key, value: m.value, headers };
      const [sent] =
        deliverAt === undefined
          ? await transport.publish(letter.origin, [record])
          : ((await transport.publishDelayed?.(letter.origin, [{ ...record, deliverAt }])) ?? []);
      if (!sent?.ok) {
        throw new Error(`[bus/cli] could not replay ${letter.position} to "${letter.origin}": ${sent && !sent.ok ? sent.error.message : 'no result'}`, {
          cause: sent && !sent.ok ? sent.error : undefined,
        });
      }
      m.ack();
      result.replayed++;
      onReplayed(letter);
    },
  );
  return result;
}
