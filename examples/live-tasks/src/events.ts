import { defineEvents, type InferEvents } from '@bus/core';
import { z } from 'zod';

/** A UTC timestamp, e.g. `2026-11-28T09:00:00.000Z`: the day of the task is its first 10 characters. */
const at = z.iso.datetime();

/**
 * The live-streaming app's events, as schemas: the one declaration that types publishers and handlers
 * (the event map is inferred from it) and that the bus checks payloads against, on publish and before
 * the handler (a message from a producer that skipped the check goes to `live.dlq`, reason VALIDATION).
 */
export const liveEvents = defineEvents({
  /** A streamer earned money (gifts, tips), in yuan. */
  'anchor.income': z.object({ anchorId: z.string().min(1), amount: z.number().positive(), at }),
  /** A streamer was live for some minutes. */
  'live.duration': z.object({ anchorId: z.string().min(1), minutes: z.number().int().positive(), at }),
});

/** `{ 'anchor.income': { anchorId: string; amount: number; at: string }; 'live.duration': … }` */
export type LiveEvents = InferEvents<typeof liveEvents>;

/**
 * Topic the live app publishes on: `live`, or `$LIVE_TOPIC` (tests use their own topic to stay apart
 * from other runs on a shared Redis or Kafka).
 */
export const LIVE_TOPIC = process.env.LIVE_TOPIC || 'live';
