import { DELAY_HEADER, type DelayedRecord } from './delay.js';
import type { WireRecord } from './envelope.js';
import type { IncomingMessage } from './transport.js';

/** The topic a message belongs to: the one it was retried from, or the one it was read from. */
export function originTopic(message: Pick<IncomingMessage, 'topic' | 'headers'>): string {
  return message.headers[DELAY_HEADER.topic] ?? message.topic;
}

/**
 * The record that brings `message` back through a consumer group's retry topic: the original key,
 * value and headers, with its origin topic, the next attempt number, the due time and (for a message
 * parked behind a retrying one of its key) the `bus-parked` flag.
 */
export function retryRecord(message: IncomingMessage, deliverAt: number, attempt: number, parked: boolean): DelayedRecord {
  const headers = { ...message.headers };
  headers[DELAY_HEADER.topic] = originTopic(message);
  headers[DELAY_HEADER.attempt] = String(attempt);
  headers[DELAY_HEADER.deliverAt] = String(deliverAt);
  if (parked) headers[DELAY_HEADER.parked] = '1';
  else delete headers[DELAY_HEADER.parked];
  const record: WireRecord = { value: message.value, headers };
  if (message.key !== undefined) record.key = message.key;
  return { ...record, deliverAt };
}
