import { DELAY_HEADER } from '../delay.js';
import { HandlerError, isRetryable } from '../errors.js';
import type { Delivery, Policy } from '../policy.js';
import { backoffDelay, type RetryPolicy } from '../retry.js';
import { errorMessage } from './retry.js';

/** A marker whose blocker is this late past its due time is dropped (see the policy's TSDoc). */
const STALE_MS = 30_000;

/** Per consumer group and key: the message being retried and the messages parked behind it. */
interface KeyBlock {
  /** Envelope id of the retrying message, or undefined once it ended while others are still parked. */
  blocker: string | undefined;
  /** When the retrying message (and so everything parked behind it) comes back. */
  until: number;
  /** Envelope ids of the messages parked behind it, in order. */
  parked: Set<string>;
}

/**
 * Retries a failing handler **through the broker**, never holding the consumer: the original record
 * is handed back with {@link Delivery.retryLater} (the group's retry topic, delayed by the back-off,
 * its next attempt number in the `bus-attempt` header) and acknowledged, so the consumer goes on with
 * its next message at once. The attempt count travels with the record, so it survives the crash of
 * any process; after the last attempt (or a non-retryable error) it throws a {@link HandlerError}
 * with the attempt count for the dead-letter policy outside it.
 *
 * Per-key order: while a keyed message is retrying, later messages of the same key that reach this
 * process are parked behind it (handed back with the same due time, `bus-parked` header, their
 * attempt count untouched), so they keep their order and other keys are never held back. The
 * markers live in the process's memory: after a crash, or when several processes share a consumer
 * group (Redis members; Kafka members owning the key's partition of the topic and of the retry topic
 * apart), a later message of a retrying key that reaches another process is not held back. A marker
 * whose blocker has not come back within `maxDelayMs` + 30 s of its due time is dropped.
 *
 * Needs a transport with `capabilities.delays`; when the record cannot be stored for later, it
 * falls back to `released` (the broker delivers it again after its nack delay).
 */
export function redeliveryRetryPolicy(policy: RetryPolicy): Policy {
  const blocks = new Map<string, KeyBlock>();
  return (next) => async (delivery) => {
    const headers = delivery.record.headers;
    const fromHeader = Number(headers[DELAY_HEADER.attempt]);
    if (Number.isInteger(fromHeader) && fromHeader > 1) delivery.attempt = fromHeader;
    const id = delivery.envelope.id;
    const key = delivery.record.key ?? delivery.envelope.key;
    const blockKey = key === undefined ? undefined : `${delivery.group}\n${key}`;
    let block = blockKey === undefined ? undefined : blocks.get(blockKey);
    if (block && blockKey !== undefined && Date.now() > block.until + policy.maxDelayMs + STALE_MS) {
      // Its blocker never came back here (another process took it, or it was lost): stop parking.
      blocks.delete(blockKey);
      block = undefined;
    }

    if (block && blockKey !== undefined && block.blocker !== id) {
      const wasParked = block.parked.has(id);
      // Parked messages come back in order behind their blocker; the first one back after the blocker
      // ended runs (the others follow it, in order).
      const mustWait = block.blocker !== undefined || (!wasParked && block.parked.size > 0);
      if (mustWait) {
        const until = Math.max(block.until, Date.now());
        if (await park(delivery, until)) {
          block.parked.add(id);
          return 'retried';
        }
        return 'released';
      }
      block.parked.delete(id);
    }

    const isFinal = (error: unknown) => delivery.attempt >= policy.attempts || !isRetryable(error);
    delivery.isFinal = isFinal;
    const release = () => {
      if (blockKey === undefined) return;
      const b = blocks.get(blockKey);
      if (!b) return;
      if (b.blocker === id) b.blocker = undefined;
      b.parked.delete(id);
      if (b.blocker === undefined && b.parked.size === 0) blocks.delete(blockKey);
    };
    try {
      const outcome = await next(delivery);
      release();
      return outcome;
    } catch (error) {
      const attempt = delivery.attempt;
      if (isFinal(error) || !delivery.retryLater) {
        release();
        throw new HandlerError(`[bus] handler failed after ${attempt} attempt(s): ${errorMessage(error)}`, attempt, { cause: error });
      }
      if (delivery.stopping.aborted) return 'released';
      const { services, labels, envelope, consumer } = delivery;
      const delay = backoffDelay(policy, attempt);
      const until = Date.now() + Math.max(1, delay);
      services.metrics.retried(labels);
      services.logger.warn('handler failed, retrying through the broker', { consumer, event: envelope.event, id, attempt, delay, error });
      if (!(await delivery.retryLater(until, attempt + 1, false))) return 'released';
      if (blockKey !== undefined) {
        const b = blocks.get(blockKey) ?? { blocker: id, until, parked: new Set<string>() };
        b.blocker = id;
        b.until = until;
        b.parked.delete(id);
        blocks.set(blockKey, b);
      }
      return 'retried';
    }
  };
}

function park(delivery: Delivery, until: number): Promise<boolean> {
  return delivery.retryLater ? delivery.retryLater(until, delivery.attempt, true) : Promise.resolve(false);
}
