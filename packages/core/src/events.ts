import type { Headers } from './envelope.js';

/**
 * The one declaration of a bus's events: event name → payload type.
 *
 * ```ts
 * type LiveEvents = {
 *   'anchor.income': { anchorId: string; amount: number };
 *   'live.duration': { anchorId: string; minutes: number };
 * };
 * const bus = createBus<LiveEvents>({ ... });
 * ```
 */
export type EventMap = { [event: string]: unknown };

/** The event names of an event map. */
export type EventName<M extends EventMap> = Extract<keyof M, string>;

/** Metadata of a handled message. */
export interface MessageInfo {
  /** The envelope id (UUIDv7), the same on every transport and every redelivery. */
  id: string;
  topic: string;
  key: string | undefined;
  headers: Readonly<Headers>;
  /** When the producer published it (Unix ms). */
  publishedAt: number;
  source: string | undefined;
  /** Transport name, e.g. `redis`. */
  transport: string;
  /** Consumer group: `<module>-<consumer>`. */
  group: string;
  /** The broker's position of the record (Redis stream id, Kafka `partition:offset`). */
  position: string;
  /** How many times the broker delivered it (1 the first time). */
  deliveryCount: number;
  /** Attempt number within this delivery (1 the first time; grows with in-process retries). */
  attempt: number;
}

/**
 * What a handler receives. A union discriminated on `event`, so `switch (ctx.event)` narrows `payload`.
 */
export type HandlerContext<M extends EventMap, E extends EventName<M> = EventName<M>> = {
  [K in E]: {
    module: string;
    consumer: string;
    event: K;
    payload: M[K];
    message: MessageInfo;
    /** Aborted when the bus is closing and the drain deadline passed: stop work and throw. */
    signal: AbortSignal;
  };
}[E];

/** Business logic for one message. Resolve to acknowledge; throw to retry and then dead-letter. */
export type Handler<M extends EventMap, E extends EventName<M> = EventName<M>> = (
  context: HandlerContext<M, E>,
) => Promise<void> | void;

/**
 * A policy wrapped around the handler (`next => context => …`), Watermill style: timeouts,
 * validation, idempotency, logging. Middlewares run inside the bus's retry loop, so each attempt
 * passes through them.
 */
export type Middleware<M extends EventMap = EventMap> = (next: Handler<M>) => Handler<M>;

/** An entry of `publishBatch`. */
export type BatchEntry<M extends EventMap> = {
  [K in EventName<M>]: {
    event: K;
    payload: M[K];
    key?: string;
    headers?: Headers;
    /** Deliver no sooner than this many ms after publish (needs `capabilities.delays`). */
    delayMs?: number;
    /** Deliver no sooner than this time (needs `capabilities.delays`). */
    deliverAt?: Date | number;
  };
}[EventName<M>];
