import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DELAY_HEADER, DLQ_HEADER, HEADER, type IncomingMessage, type LagInfo, type Transport, type WireRecord } from '@bus/core';

/**
 * The consumer group `bus dlq replay` and the board's "replay all" read dead-letter topics with. It
 * is persistent on purpose: a second replay only sends what was dead-lettered since the first, and
 * `bus status` and the board show its lag as the dead letters not yet replayed.
 */
export const DLQ_REPLAY_GROUP = 'bus-dlq-replay';

/** Header added to a replayed message: when it was replayed. */
export const REPLAYED_AT_HEADER = 'bus-replayed-at';

/** `live` → `live.dlq`; a name already ending in `.dlq` is kept. */
export function deadLetterTopicOf(topic: string): string {
  return topic.endsWith('.dlq') ? topic : `${topic}.dlq`;
}

/** A record as it is stored in a topic: its broker position, key, headers and raw value. */
export interface StoredRecord extends WireRecord {
  /** The broker's position: a Redis stream id, `partition:offset` on Kafka. */
  id: string;
}

/** A dead-lettered message, as `bus dlq list` and the board show it. */
export interface DeadLetter {
  /** Position in the dead-letter topic. */
  position: string;
  /** Envelope id (`ce_id`). */
  id: string | undefined;
  /** Event name (`ce_type`). */
  event: string | undefined;
  key: string | undefined;
  /** The topic it was read from (where a replay sends it back). */
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
  /** The value as UTF-8 text (bytes that are not UTF-8 become U+FFFD). */
  payload: string;
}

/** Reads the `bus-dlq-*` headers (see `DLQ_HEADER` of `@bus/core`) of a dead-lettered record. */
export function toDeadLetter(m: StoredRecord): DeadLetter {
  const h = m.headers;
  const value = typeof m.value === 'string' ? m.value : Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength).toString('utf8');
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

/** Options of {@link replayDeadLetters} and {@link publishReplays}. */
export interface ReplayOptions {
  /**
   * Send the copies delayed by this many ms (the transport's delayed delivery: they reach the origin
   * topic no sooner), e.g. to replay after a fix is deployed or a dependency is back. @default 0 (at once)
   */
  delayMs?: number;
}

/**
 * The record a replay sends back to the origin topic: same key, value and headers, minus the
 * `bus-dlq-*` ones and the retry state of a broker-side retry (`bus-attempt`, `bus-deliver-at`…: the
 * copy starts again at attempt 1), plus {@link REPLAYED_AT_HEADER}. Undefined when the record has no
 * `bus-dlq-topic` header (it was not written by the bus).
 */
export function replayRecord(m: StoredRecord, now: Date = new Date()): { topic: string; record: WireRecord } | undefined {
  const origin = m.headers[DLQ_HEADER.topic];
  if (!origin) return undefined;
  const headers: Record<string, string> = {};
  const dropped = new Set<string>([...Object.values(DLQ_HEADER), ...Object.values(DELAY_HEADER)]);
  for (const [name, value] of Object.entries(m.headers)) if (!dropped.has(name)) headers[name] = value;
  headers[REPLAYED_AT_HEADER] = now.toISOString();
  return { topic: origin, record: m.key === undefined ? { value: m.value, headers } : { key: m.key, value: m.value, headers } };
}

/**
 * Publishes the replay copy of each record ({@link replayRecord}) to its origin topic. Returns the
 * number sent and skipped (no origin header).
 *
 * @throws {Error} `[bus/board] could not replay …` when the broker refused one (the ones before it were sent)
 */
export async function publishReplays(transport: Transport, records: readonly StoredRecord[], options: ReplayOptions = {}): Promise<ReplayResult> {
  const result: ReplayResult = { replayed: 0, skipped: 0 };
  const delayMs = options.delayMs ?? 0;
  if (delayMs > 0 && !(transport.capabilities.delays && transport.publishDelayed)) {
    throw new Error(`[bus/board] transport "${transport.name}" has no delayed delivery; replay without a delay`);
  }
  for (const m of records) {
    const replay = replayRecord(m);
    if (!replay) {
      result.skipped++;
      continue;
    }
    const deliverAt = delayMs > 0 ? Date.now() + delayMs : undefined;
    if (deliverAt !== undefined) replay.record.headers[DELAY_HEADER.deliverAt] = String(deliverAt);
    const [sent] =
      deliverAt === undefined
        ? await transport.publish(replay.topic, [replay.record])
        : ((await transport.publishDelayed?.(replay.topic, [{ ...replay.record, deliverAt }])) ?? []);
    if (!sent?.ok) {
      throw new Error(`[bus/board] could not replay ${m.id} to "${replay.topic}": ${sent && !sent.ok ? sent.error.message : 'no result'}`, {
        cause: sent && !sent.ok ? sent.error : undefined,
      });
    }
    result.replayed++;
  }
  return result;
}

/** What {@link readTopic} reads. */
export interface ReadTopicOptions {
  topic: string;
  /** Consumer group; created at the earliest position when new. */
  group: string;
  /** At most this many messages. */
  limit: number;
  /** Longest wait for the first message when some are expected. @default 15000 */
  firstMessageTimeoutMs?: number;
  /** After the first message: stop when nothing came for this long. @default 1500 */
  idleMs?: number;
  /** Called after each message handled, with the count so far and how many are expected. */
  progress?: Progress | undefined;
  /**
   * A group of this read only (a random name): deleted after it (`Transport.deleteGroup`, where the
   * transport has it), so that reads leave no group behind. A failed deletion does not fail the read:
   * it goes to `onCleanupError`.
   */
  throwaway?: boolean;
  onCleanupError?: ((error: unknown) => void) | undefined;
}

/** Progress of a long read (`bus dlq`): `done` of `expected` messages (expected: the lag read first). */
export type Progress = (done: number, expected: number) => void;

/**
 * Reads up to `limit` messages of `topic` with a consumer group (created at the earliest position),
 * passing each to `each`, which settles it. Stops at the group's lag as measured before (when the
 * transport reports lag), at `limit`, or when the topic stays quiet. Works on every transport;
 * `bus dlq` and the board's generic dead-letter store use it.
 *
 * @throws {Error} when `each` throws (the message is nacked) or the topic cannot be read
 */
export async function readTopic(transport: Transport, options: ReadTopicOptions, each: (m: IncomingMessage) => Promise<void>): Promise<number> {
  const firstMessageTimeoutMs = options.firstMessageTimeoutMs ?? 15_000;
  const idleMs = options.idleMs ?? 1500;
  let expected = options.limit;
  if (transport.lag) {
    let info: LagInfo | undefined;
    try {
      [info] = await transport.lag(options.group, [options.topic]);
    } catch (error) {
      throw new Error(`[bus/board] cannot read "${options.topic}": ${(error as Error)?.message ?? error}`, { cause: error });
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
      consumerName: `bus-${hostname()}-${process.pid}`,
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
          options.progress?.(count, expected);
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
      if (last === 0 ? now - started > firstMessageTimeoutMs : now - last > idleMs) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await subscription.close();
    if (options.throwaway) await transport.deleteGroup?.(options.group, [options.topic]).catch((error: unknown) => options.onCleanupError?.(error));
  }
  if (failure !== undefined) throw failure;
  return count;
}

/**
 * `bus dlq list`: the dead letters of `topic`, read with a throwaway consumer group
 * (`bus-cli-dlq-list-<random>`, starting at the earliest message, deleted afterwards), so listing
 * never moves the replay position and leaves no group behind. A group that could not be deleted is
 * reported to `onCleanupError`.
 */
export async function listDeadLetters(
  transport: Transport,
  topic: string,
  limit: number,
  waitMs = 15_000,
  progress?: Progress,
  onCleanupError?: (error: unknown) => void,
): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  await readTopic(
    transport,
    {
      topic: deadLetterTopicOf(topic),
      group: `bus-cli-dlq-list-${randomUUID().slice(0, 8)}`,
      limit,
      firstMessageTimeoutMs: waitMs,
      progress,
      throwaway: true,
      onCleanupError,
    },
    async (m) => {
      letters.push(toDeadLetter(m));
      m.ack();
    },
  );
  return letters;
}

export interface ReplayResult {
  /** Sent back to their origin topic. */
  replayed: number;
  /** Without a `bus-dlq-topic` header (not written by the bus): acknowledged, not sent. */
  skipped: number;
}

/**
 * `bus dlq replay` and the board's "replay all": sends each dead letter of `topic` not replayed yet
 * back to its origin topic (the `bus-dlq-topic` header), with the same id, key, payload and headers
 * minus the `bus-dlq-*` ones, and acknowledges it in the {@link DLQ_REPLAY_GROUP} group once the
 * broker stored the copy. Every consumer group of the origin topic receives it again. A failed
 * publish stops the replay (the rest stays for the next one) and throws.
 */
export async function replayDeadLetters(
  transport: Transport,
  topic: string,
  limit: number,
  onReplayed: (letter: DeadLetter) => void = () => {},
  waitMs = 15_000,
  options: ReplayOptions & { progress?: Progress } = {},
): Promise<ReplayResult> {
  const { progress } = options;
  const result: ReplayResult = { replayed: 0, skipped: 0 };
  if ((options.delayMs ?? 0) > 0 && !(transport.capabilities.delays && transport.publishDelayed)) {
    throw new Error(`[bus/board] transport "${transport.name}" has no delayed delivery; replay without a delay`);
  }
  await readTopic(transport, { topic: deadLetterTopicOf(topic), group: DLQ_REPLAY_GROUP, limit, firstMessageTimeoutMs: waitMs, progress }, async (m) => {
    const one = await publishReplays(transport, [m], options);
    m.ack();
    result.replayed += one.replayed;
    result.skipped += one.skipped;
    if (one.replayed) onReplayed(toDeadLetter(m));
  });
  return result;
}
