const noop = (): void => {};

/**
 * Runs a consumer's messages with at most `concurrency` handlers at a time **across batches**,
 * holding per-key order: a message with a key starts only after the previous message with the same
 * key (from this batch or an earlier one) finished. Messages without a key have no order.
 *
 * The module runner hands it every batch as the transport delivers it; with a transport that hands
 * over the next batch before the previous one settled (`SubscribeOptions.maxBatchesInFlight` > 1),
 * the next batch's messages take the slots the previous batch's slow handlers leave free, so
 * I/O-bound handlers keep `concurrency` busy instead of waiting for the slowest key of each batch.
 * Slots are handed over first come, first served, in the order messages became ready.
 */
export class KeyedDispatcher {
  private active = 0;
  /** Messages ready to run (their key's previous message finished), waiting for a slot. */
  private readonly waiting: (() => void)[] = [];
  /** The last scheduled message of each key: the next one with that key runs after it. */
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly concurrency: number) {}

  /**
   * Schedules the messages in their order; resolves once every one of them ran. `run` must not
   * throw (a rejection is swallowed here so that it cannot stall the key's later messages).
   */
  run<T extends { key?: string | undefined }>(messages: readonly T[], run: (message: T) => Promise<void>): Promise<void> {
    const done: Promise<void>[] = new Array(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i] as T;
      const key = message.key;
      const previous = key === undefined ? undefined : this.tails.get(key);
      const finished = previous ? previous.then(() => this.inSlot(message, run)) : this.inSlot(message, run);
      if (key !== undefined) {
        this.tails.set(key, finished);
        // Forget the key once its last scheduled message finished (the map stays as small as the keys in flight).
        void finished.then(() => {
          if (this.tails.get(key) === finished) this.tails.delete(key);
        });
      }
      done[i] = finished;
    }
    return Promise.all(done).then(noop);
  }

  private async inSlot<T>(message: T, run: (message: T) => Promise<void>): Promise<void> {
    if (this.active < this.concurrency) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      await run(message);
    } catch {
      // `run` settles its message whatever happens; nothing to do here.
    } finally {
      // Hand the slot straight to the next waiting message, or give it back.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
