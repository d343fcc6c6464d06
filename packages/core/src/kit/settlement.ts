import type { WireRecord } from '../envelope.js';
import type { BatchHandler, IncomingMessage } from '../transport.js';

/** What became of one delivered message: acknowledged (never again to this group) or released for redelivery. */
export type Settlement = 'ack' | 'nack';

/** The fields of an {@link IncomingMessage} a transport provides; the kit adds `ack` and `nack`. */
export interface DeliveredRecord extends WireRecord {
  topic: string;
  /** The broker's position: a Redis stream id, `partition:offset` on Kafka. */
  id: string;
  partition?: number;
  deliveryCount: number;
}

/** The outcome of one batch handler call, in delivery order. */
export interface SettledBatch<T> {
  /** Entries acknowledged by the handler, in delivery order. */
  acked: T[];
  /** Entries nacked, left unsettled, or never handed to a handler: deliver them again. */
  nacked: T[];
  /** The settlement of each entry, in the order of the batch. */
  settlements: Settlement[];
  /** Whether the handler was called (false: the stop signal was already aborted). */
  started: boolean;
  /** What the handler rejected with, if it did; its unsettled messages were nacked. */
  error?: unknown;
}

const NO_HEADERS: WireRecord['headers'] = Object.freeze({}) as WireRecord['headers'];

/**
 * A message whose `ack`/`nack` record into its batch. Prototype methods, not closures: one object
 * per message on the hot path (a transport may write the record straight into it, see `toRecord`).
 */
class KitMessage implements IncomingMessage {
  topic = '';
  id = '';
  value: WireRecord['value'] = '';
  headers: WireRecord['headers'] = NO_HEADERS;
  key?: string;
  partition?: number;
  deliveryCount = 1;

  constructor(
    private readonly batch: BatchSettlement<unknown>,
    private readonly index: number,
  ) {}

  /** Takes the fields of a record the transport built on its own. */
  assign(record: DeliveredRecord): void {
    this.topic = record.topic;
    this.id = record.id;
    this.value = record.value;
    this.headers = record.headers;
    if (record.key !== undefined) this.key = record.key;
    if (record.partition !== undefined) this.partition = record.partition;
    this.deliveryCount = record.deliveryCount;
  }

  ack(): void {
    this.batch.settle(this.index, 'ack');
  }

  nack(): void {
    this.batch.settle(this.index, 'nack');
  }
}

/**
 * The one implementation of the {@link BatchHandler} settlement rules, for every transport
 * (`@bus/core/kit`). A transport turns what it fetched into a batch, runs the handler through it,
 * and commits what {@link BatchSettlement.run} returns:
 *
 * - each message is settled at most once: the first `ack()` or `nack()` wins, later calls are ignored;
 * - a message left unsettled when the handler's promise settles is nacked;
 * - a handler that rejects nacks every message it left unsettled (what it acknowledged stays acknowledged);
 * - settlements after the batch is sealed (a handler that forgot to await) are ignored: the broker
 *   already has the batch's outcome;
 * - once the stop signal is aborted no handler starts: the whole batch is released (nacked) at once,
 *   for another member (or the next start) to take.
 *
 * ```ts
 * const batch = new BatchSettlement(entries, (e) => ({ topic, id: e.id, value: e.value, headers: e.headers, deliveryCount: 1 }));
 * const { acked, nacked } = await batch.run(handler, stopSignal);
 * await commit(acked, nacked);
 * ```
 */
export class BatchSettlement<T> {
  /** The messages to hand to the handler, in the order of the entries. */
  readonly messages: IncomingMessage[];
  private readonly states: (Settlement | undefined)[];
  private sealed = false;

  /**
   * @param toRecord the record of an entry. It may fill `into` (the message itself: its fields, and
   *   a `headers` object of its own) and return it, which saves an object per message, or return a
   *   record of its own, whose fields are copied.
   */
  constructor(
    readonly entries: readonly T[],
    toRecord: (entry: T, index: number, into: DeliveredRecord) => DeliveredRecord,
  ) {
    this.states = new Array(entries.length);
    const messages = new Array<IncomingMessage>(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const message = new KitMessage(this as BatchSettlement<unknown>, i);
      const record = toRecord(entries[i] as T, i, message);
      if (record !== message) message.assign(record);
      messages[i] = message;
    }
    this.messages = messages;
  }

  /** @internal called by the messages. */
  settle(index: number, settlement: Settlement): void {
    if (this.sealed || this.states[index] !== undefined) return;
    this.states[index] = settlement;
  }

  /**
   * Calls the handler once with every message, unless `signal` is already aborted (then nothing
   * starts and everything is nacked). Never throws; resolves with the sealed outcome.
   */
  async run(handler: BatchHandler, signal?: AbortSignal): Promise<SettledBatch<T>> {
    if (signal?.aborted || this.messages.length === 0) return this.seal(false);
    try {
      await handler(this.messages);
    } catch (error) {
      return this.seal(true, error);
    }
    return this.seal(true);
  }

  /** Ends the batch: unsettled messages become nacked; later settlements are ignored. Idempotent. */
  seal(started = true, error?: unknown): SettledBatch<T> {
    this.sealed = true;
    const acked: T[] = [];
    const nacked: T[] = [];
    const settlements: Settlement[] = new Array(this.entries.length);
    for (let i = 0; i < this.entries.length; i++) {
      const s: Settlement = this.states[i] === 'ack' ? 'ack' : 'nack';
      this.states[i] = s;
      settlements[i] = s;
      (s === 'ack' ? acked : nacked).push(this.entries[i] as T);
    }
    const out: SettledBatch<T> = { acked, nacked, settlements, started };
    if (error !== undefined) out.error = error;
    return out;
  }
}
