import type { WireRecord } from './envelope.js';
import { ConfigError } from './errors.js';

/**
 * Headers the bus writes for delayed delivery and broker-side retries. They travel with the record
 * through every broker, so they survive the crash of any process.
 */
export const DELAY_HEADER = {
  /** Unix ms before which the message must not be handed to a consumer (set on delayed records). */
  deliverAt: 'bus-deliver-at',
  /** Attempt number of the next delivery of a message retried through the broker (`2` on the first retry). */
  attempt: 'bus-attempt',
  /** Topic a retried (or parked) record came from: its handler, metrics and dead letter see this topic. */
  topic: 'bus-retry-topic',
  /** Set on a message parked behind an earlier retrying message of the same key (it has not failed). */
  parked: 'bus-parked',
} as const;

/**
 * A record that must not be delivered before `deliverAt`. What {@link Transport.publishDelayed}
 * takes; the bus also writes `deliverAt` into the `bus-deliver-at` header so consumers can measure
 * lateness.
 */
export interface DelayedRecord extends WireRecord {
  /** Unix time in ms (the broker's clock where the broker keeps the time, e.g. Redis `TIME`). */
  deliverAt: number;
}

/** The delay options of `publish` and of a `publishBatch` entry; at most one of them. */
export interface DelayOptions {
  /** Deliver no sooner than this many ms after publish. 0 or less: at once. */
  delayMs?: number;
  /** Deliver no sooner than this time (a `Date` or Unix ms). A past time: at once. */
  deliverAt?: Date | number;
}

/** The longest delay accepted: 1 year. Longer waits belong in a scheduler, not a message broker. */
export const MAX_DELAY_MS = 365 * 24 * 3600 * 1000;

/**
 * The due time (Unix ms) of a publish, or `undefined` when it is due at once.
 * @throws {ConfigError} when both options are set, or a value is not a finite time within {@link MAX_DELAY_MS}
 */
export function dueTime(options: DelayOptions, now: number, where: string): number | undefined {
  const { delayMs, deliverAt } = options;
  if (delayMs === undefined && deliverAt === undefined) return undefined;
  if (delayMs !== undefined && deliverAt !== undefined) throw new ConfigError(where, 'may set delayMs or deliverAt, not both', '[both]');
  let due: number;
  if (delayMs !== undefined) {
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs)) throw new ConfigError(`${where}.delayMs`, 'must be a finite number of ms', delayMs);
    due = now + Math.ceil(delayMs);
  } else {
    const at = deliverAt instanceof Date ? deliverAt.getTime() : deliverAt;
    if (typeof at !== 'number' || !Number.isFinite(at)) throw new ConfigError(`${where}.deliverAt`, 'must be a valid Date or Unix ms', deliverAt);
    due = Math.ceil(at);
  }
  if (due - now > MAX_DELAY_MS) throw new ConfigError(where, `must not delay by more than ${MAX_DELAY_MS} ms (1 year)`, due - now);
  return due > now ? due : undefined;
}

/** The due time written in a record's headers, if any. */
export function deliverAtOf(headers: Readonly<Record<string, string>>): number | undefined {
  const raw = headers[DELAY_HEADER.deliverAt];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}
