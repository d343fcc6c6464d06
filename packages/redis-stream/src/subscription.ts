import { type BatchHandler, type Logger, type SubscribeOptions, type Subscription, sleep } from '@bus/core';
import { BatchSettlement, type DeliveredRecord, type SettledBatch } from '@bus/core/kit';
import { connect, type Deadlines, destroy, isReplyError, keySlot, messageOf, replyCode, toBusError } from './client.js';
import { type Command, forEachEntry, num, parseEntries, pipeline, type RawEntry } from './commands.js';
import type { RedisClient, ResolvedOptions } from './options.js';
import { restoreBinaryValues } from './exact.js';
import { Retention } from './retention.js';
import { EMPTY_VALUE, fromFields } from './wire.js';

/** What a subscription needs from its transport. */
export interface SubscriptionContext {
  options: ResolvedOptions;
  logger: Logger;
  /** A new, unconnected client dedicated to one blocking reader. */
  newReaderClient(): RedisClient;
  /** The transport's command deadlines (one timer for all commands). */
  deadlines: Deadlines;
  clusterMode: boolean;
  streamKey(topic: string): string;
  onClosed(subscription: Subscription): void;
  /** Entries of `key` trimmed before `group` had them (see retention.ts). */
  onTrimmedUnread?(key: string, group: string, count: number): void;
}

/**
 * Removes the group's consumers (other than ARGV[2]) with no pending entry and idle longer than
 * ARGV[3] ms. A script, so that no entry can be delivered to a consumer between the check and
 * XGROUP DELCONSUMER (which would drop that entry from the PEL). Redis 7.2 reports `inactive`
 * (since the last successful read, -1 if never); 7.0 only `idle`.
 */
const DELETE_IDLE_CONSUMERS = `
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  local idle = info['inactive']
  if idle == nil or idle < 0 then idle = info['idle'] end
  if info['name'] ~= ARGV[2] and info['pending'] == 0 and idle ~= nil and idle > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed[#removed + 1] = info['name']
  end
end
return removed`;

/** The entries of one dispatch; those from index `from` on are not committed yet. */
interface Held {
  entries: Entry[];
  from: number;
}

/** A delivered entry, before it becomes an IncomingMessage. */
interface Entry {
  key: string;
  id: string;
  fields: (Buffer | string)[];
  deliveryCount: number;
}

/**
 * The streams of one subscription that one blocking `XREADGROUP` can read together: all of them on
 * a standalone server, those of one hash slot on a Cluster. Each reader owns one dedicated connection.
 */
interface Reader {
  keys: string[];
  client: RedisClient | undefined;
  /** XAUTOCLAIM cursor per stream. */
  cursors: Map<string, string>;
  nextClaimAt: number;
  nextHygieneAt: number;
  /** In a blocking read: `close()` drops the connection to end it at once. */
  blocking: boolean;
  /**
   * The last batch's XACK, sent and not answered yet (one handler call at a time only): the next
   * XREADGROUP goes out right behind it on the same connection instead of one round trip later.
   * Awaited before the next commit and before the loop ends.
   */
  committing: Promise<void> | undefined;
}

/**
 * Opens a consumer-group subscription: creates the groups (`XGROUP CREATE … MKSTREAM`, `BUSYGROUP`
 * ignored), then runs one read loop per reader. Resolves once every group exists and reading has
 * begun; rejects with a `ConnectionError` when Redis cannot be reached.
 */
export async function openSubscription(ctx: SubscriptionContext, options: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
  const subscription = new StreamSubscription(ctx, options, handler);
  await subscription.start();
  return subscription;
}

class StreamSubscription implements Subscription {
  private readonly o: ResolvedOptions;
  private readonly log: Logger;
  private readonly readers: Reader[] = [];
  private readonly topicOf = new Map<string, string>();
  private readonly startId: string;
  private readonly stop = new AbortController();
  private loops: Promise<void>[] = [];
  private turn: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  /** `SubscribeOptions.maxBatchesInFlight`: handler calls (fetches) each reader may have running at once. */
  private readonly maxInFlight: number;
  /** Safe retention (the `retention` option), run from the claim pass. */
  private readonly retention: Retention | undefined;

  constructor(
    private readonly ctx: SubscriptionContext,
    private readonly so: SubscribeOptions,
    private readonly handler: BatchHandler,
  ) {
    this.o = ctx.options;
    this.log = ctx.logger.child({ group: so.group, consumer: so.consumerName });
    this.startId = so.startFrom === 'latest' ? '$' : '0';
    this.maxInFlight = Math.max(1, Math.floor(so.maxBatchesInFlight ?? 1));
    this.retention = ctx.options.retention && new Retention(ctx.options.retention.intervalMs, ctx.options.retention.exact, this.log, ctx.onTrimmedUnread);
    const bySlot = new Map<number, string[]>();
    for (const topic of new Set(so.topics)) {
      const key = ctx.streamKey(topic);
      this.topicOf.set(key, topic);
      // One XREADGROUP may only name keys of one slot in a Cluster.
      const slot = ctx.clusterMode ? keySlot(key) : 0;
      bySlot.set(slot, [...(bySlot.get(slot) ?? []), key]);
    }
    for (const keys of bySlot.values()) {
      this.readers.push({ keys, client: undefined, cursors: new Map(), nextClaimAt: 0, nextHygieneAt: 0, blocking: false, committing: undefined });
    }
  }

  private get stopped(): boolean {
    return this.stop.signal.aborted;
  }

  async start(): Promise<void> {
    try {
      for (const reader of this.readers) await this.ensureGroups(reader, await this.clientOf(reader));
    } catch (error) {
      for (const reader of this.readers) this.dropClient(reader);
      throw toBusError(error, this.o.name, `could not create consumer group "${this.so.group}"`);
    }
    this.loops = this.readers.map((reader) => this.loop(reader));
    this.log.debug('subscription started', { streams: this.readers.flatMap((r) => r.keys), readers: this.readers.length });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      // A blocked XREADGROUP would hold close() for up to pollIntervalMs: drop its connection instead.
      // Entries Redis handed out in that instant stay pending and are reclaimed after claimIdleMs.
      for (const reader of this.readers) if (reader.blocking) this.dropClient(reader);
      await Promise.allSettled(this.loops);
      for (const reader of this.readers) this.dropClient(reader);
      this.ctx.onClosed(this);
      this.log.debug('subscription closed');
    })();
    return this.closing;
  }

  private async clientOf(reader: Reader): Promise<RedisClient> {
    if (!reader.client) {
      const client = this.ctx.newReaderClient();
      reader.client = client;
      try {
        await connect(client, this.o.name, this.o.connectTimeoutMs);
      } catch (error) {
        if (reader.client === client) reader.client = undefined;
        throw error;
      }
    }
    return reader.client;
  }

  private dropClient(reader: Reader): void {
    destroy(reader.client);
    reader.client = undefined;
  }

  /** A command on the reader's connection with a deadline; past it the connection is replaced. */
  private guarded<T>(reader: Reader, promise: Promise<T>, ms: number, what: string): Promise<T> {
    const client = reader.client;
    return this.ctx.deadlines.run(promise, ms, `[bus/${this.o.name}] ${what}`, () => {
      if (reader.client === client) this.dropClient(reader);
    });
  }

  private async ensureGroups(reader: Reader, client: RedisClient): Promise<void> {
    const replies = await this.guarded(
      reader,
      pipeline(
        client,
        reader.keys.map((key): Command => ['XGROUP', 'CREATE', key, this.so.group, this.startId, 'MKSTREAM']),
      ),
      this.o.commandTimeoutMs,
      'XGROUP CREATE',
    );
    for (const reply of replies) if (reply.error && replyCode(reply.error) !== 'BUSYGROUP') throw reply.error;
  }

  private async loop(reader: Reader): Promise<void> {
    let failures = 0;
    // maxInFlight > 1: dispatches (handler call + commit) still running. The loop fetches the next
    // batch while they run, up to maxInFlight of them; each commits its own settlements.
    const running = new Set<Promise<void>>();
    while (!this.stopped) {
      try {
        const client = await this.clientOf(reader);
        let entries: Entry[] = [];
        if (Date.now() >= reader.nextClaimAt) entries = await this.claim(reader, client);
        // While batches are in flight or an XACK is unanswered, read without BLOCK: their XACKs share
        // this connection and would wait behind a blocked read (a retried one, for the XACK).
        if (entries.length === 0 && !this.stopped) entries = await this.read(reader, client, running.size === 0 && reader.committing === undefined);
        if (failures > 0) this.log.info('reading resumed', { streams: reader.keys, failures });
        failures = 0;
        if (entries.length > 0 && this.maxInFlight === 1) await this.dispatch(reader, entries);
        else if (entries.length > 0) {
          const dispatched: Promise<void> = this.dispatch(reader, entries)
            .catch((error) => this.log.error('dispatch failed; the entries will be delivered again', { error: messageOf(error) }))
            .finally(() => running.delete(dispatched));
          running.add(dispatched);
          if (running.size >= this.maxInFlight) await Promise.race(running);
        } else if (running.size > 0) {
          // Nothing new: wait for a running batch before reading again (then blocking, once none runs).
          await Promise.race(running);
        } else if (reader.committing) {
          await reader.committing;
        }
      } catch (error) {
        if (this.stopped) break;
        failures++;
        if (replyCode(error) === 'NOGROUP') {
          // The stream or the group was deleted: recreate it, at the subscription's start position.
          this.log.warn('consumer group or stream disappeared; recreating it', { streams: reader.keys, startId: this.startId, error: messageOf(error) });
          try {
            if (reader.client) await this.ensureGroups(reader, reader.client);
            continue;
          } catch {
            // Retried below, after the back-off.
          }
        } else if (failures === 1 || failures % 20 === 0) {
          this.log.warn('read failed; retrying', { streams: reader.keys, failures, error: messageOf(error) });
        }
        if (!isReplyError(error) && failures > 1) this.dropClient(reader);
        await sleep(Math.min(100 * 2 ** (failures - 1), 2000), this.stop.signal);
      }
    }
    // close() waits for the running batches' handlers and commits.
    await Promise.allSettled(running);
    await reader.committing;
  }

  private xreadgroup(client: RedisClient, args: (string | number)[]): Promise<unknown> {
    // Lower case: see the XADD of `publish` (ioredis lower-cases the name for each flag check).
    return this.o.binary ? client.callBuffer('xreadgroup', ...args) : client.call('xreadgroup', ...args);
  }

  private async read(reader: Reader, client: RedisClient, blocking = true): Promise<Entry[]> {
    if (!blocking) {
      const args: (string | number)[] = ['GROUP', this.so.group, this.so.consumerName, 'COUNT', this.so.batchSize, 'STREAMS', ...reader.keys];
      for (const _ of reader.keys) args.push('>');
      return toEntries(await this.guarded(reader, this.xreadgroup(client, args), this.o.commandTimeoutMs, 'XREADGROUP'));
    }
    // Never BLOCK 0 (forever); wake up in time for the next claim pass.
    const block = Math.max(1, Math.min(this.so.pollIntervalMs, reader.nextClaimAt - Date.now()));
    const args: (string | number)[] = ['GROUP', this.so.group, this.so.consumerName, 'COUNT', this.so.batchSize, 'BLOCK', block, 'STREAMS', ...reader.keys];
    for (const _ of reader.keys) args.push('>');
    reader.blocking = true;
    let reply: unknown;
    try {
      reply = await this.guarded(reader, this.xreadgroup(client, args), block + this.o.readTimeoutGraceMs, 'XREADGROUP');
    } finally {
      reader.blocking = false;
    }
    const entries = toEntries(reply);
    if (entries.length > 0 && entries.length < this.so.batchSize && !this.stopped) {
      // A blocked read wakes on the first XADD of a producer's pipeline; the rest of it is in the
      // stream a moment later. One non-blocking read collects it, so a published batch is handled
      // as one batch instead of a batch of one followed by the rest.
      const more: (string | number)[] = ['GROUP', this.so.group, this.so.consumerName, 'COUNT', this.so.batchSize - entries.length, 'STREAMS', ...reader.keys];
      for (const _ of reader.keys) more.push('>');
      entries.push(...toEntries(await this.guarded(reader, this.xreadgroup(client, more), this.o.commandTimeoutMs, 'XREADGROUP')));
    }
    return entries;
  }

  /**
   * XAUTOCLAIM of entries idle longer than claimIdleMs: those of dead members, and nacked ones
   * (made idle on purpose). Cleans pending entries whose data is gone. Delivery counts come from
   * XPENDING, as XAUTOCLAIM does not return them.
   */
  private async claim(reader: Reader, client: RedisClient): Promise<Entry[]> {
    const { group, consumerName, batchSize } = this.so;
    const replies = await this.guarded(
      reader,
      pipeline(
        client,
        reader.keys.map((key): Command => ['XAUTOCLAIM', key, group, consumerName, this.o.claimIdleMs, reader.cursors.get(key) ?? '0-0', 'COUNT', batchSize]),
        this.o.binary,
      ),
      this.o.commandTimeoutMs,
      'XAUTOCLAIM',
    );
    const claimed: Entry[] = [];
    const gone: Command[] = [];
    let more = false;
    replies.forEach((reply, i) => {
      const key = reader.keys[i] as string;
      if (reply.error) throw reply.error;
      const [cursor, entries, deleted] = reply.value as [Buffer | string, unknown, (Buffer | string)[] | undefined];
      const next = String(cursor);
      reader.cursors.set(key, next);
      const raw: RawEntry[] = parseEntries(entries);
      // Redis 7 drops deleted entries from the PEL itself and lists them; 6.2 returns them with nil fields.
      const deletedIds = [...(deleted ?? []).map(String), ...raw.filter((e) => !e.fields).map((e) => e.id)];
      if (deletedIds.length > 0) gone.push(['XACK', key, group, ...deletedIds]);
      const live = raw.filter((e) => e.fields);
      for (const e of live) claimed.push({ key, id: e.id, fields: e.fields as (Buffer | string)[], deliveryCount: 2 });
      if (live.length > 0 && next !== '0-0') more = true;
    });
    reader.nextClaimAt = more ? Date.now() : Date.now() + this.o.claimIntervalMs;
    if (gone.length > 0) {
      await this.guarded(reader, pipeline(client, gone), this.o.commandTimeoutMs, 'XACK');
      this.log.info('cleaned pending entries whose data was trimmed or deleted', { count: gone.reduce((n, c) => n + c.length - 3, 0) });
    }
    if (claimed.length > 0) {
      await this.fillDeliveryCounts(reader, client, claimed);
      this.log.debug('claimed idle pending entries', { count: claimed.length, ids: claimed.slice(0, 20).map((e) => e.id) });
    }
    await this.hygiene(reader, client);
    await this.retention?.maybeRun(client, reader.keys);
    return claimed;
  }

  private async fillDeliveryCounts(reader: Reader, client: RedisClient, entries: Entry[]): Promise<void> {
    const byKey = groupByKey(entries);
    const keys = [...byKey.keys()];
    const replies = await this.guarded(
      reader,
      pipeline(
        client,
        keys.map((key): Command => {
          const list = byKey.get(key) as Entry[];
          return ['XPENDING', key, this.so.group, (list[0] as Entry).id, (list[list.length - 1] as Entry).id, list.length * 2 + 10, this.so.consumerName];
        }),
      ),
      this.o.commandTimeoutMs,
      'XPENDING',
    );
    const counts = new Map<string, number>();
    replies.forEach((reply, i) => {
      if (reply.error || !Array.isArray(reply.value)) return;
      for (const row of reply.value as unknown[][]) counts.set(`${keys[i]}\n${String(row[0])}`, num(row[3]) ?? 2);
    });
    for (const e of entries) e.deliveryCount = counts.get(`${e.key}\n${e.id}`) ?? e.deliveryCount;
  }

  /** Removes members idle past consumerIdleTimeoutMs that hold no pending entry. Best effort. */
  private async hygiene(reader: Reader, client: RedisClient): Promise<void> {
    const timeout = this.o.consumerIdleTimeoutMs;
    const now = Date.now();
    if (timeout <= 0 || now < reader.nextHygieneAt) return;
    reader.nextHygieneAt = now + Math.min(Math.max(timeout / 2, this.o.claimIntervalMs), 600_000);
    try {
      const replies = await this.guarded(
        reader,
        pipeline(
          client,
          reader.keys.map((key): Command => ['EVAL', DELETE_IDLE_CONSUMERS, 1, key, this.so.group, this.so.consumerName, timeout]),
        ),
        this.o.commandTimeoutMs,
        'XGROUP DELCONSUMER',
      );
      const removed = replies.flatMap((reply) => (Array.isArray(reply.value) ? reply.value.map(String) : []));
      if (removed.length > 0) this.log.info('removed idle consumers without pending entries', { consumers: removed });
    } catch (error) {
      this.log.debug('consumer hygiene failed', { error: messageOf(error) });
    }
  }

  /**
   * Hands the entries to the handler in batches of at most batchSize, one handler call at a time per
   * subscription (maxInFlight > 1: calls of different dispatches overlap, as the subscriber asked).
   */
  private async dispatch(reader: Reader, entries: Entry[]): Promise<void> {
    // One commit in flight per reader, in order.
    if (reader.committing) await reader.committing;
    if (!this.o.binary && reader.client) {
      // Byte-exact values (and dead letters) for entries whose bytes string replies altered.
      await restoreBinaryValues(reader.client, entries, this.o.fields.value, (p) => this.guarded(reader, p, this.o.commandTimeoutMs, 'XRANGE'));
    }
    // Entries from `held.from` on are read and not committed yet (batches commit in order). The
    // refresher builds its id lists from it only when it fires, not for every batch.
    const held: Held = { entries, from: 0 };
    const refresher = this.refresher(reader, held);
    try {
      for (let i = 0; i < entries.length; i += this.so.batchSize) {
        const batch = new BatchSettlement(entries.slice(i, i + this.so.batchSize), (e, _, into) => this.record(e, into));
        // One handler call at a time per subscription; once closing, none starts (the batch is released).
        const settled = await (this.maxInFlight > 1 ? batch.run(this.handler, this.stop.signal) : this.exclusive(() => batch.run(this.handler, this.stop.signal)));
        if (settled.error !== undefined) this.log.debug('batch handler rejected; its unsettled messages are nacked', { error: messageOf(settled.error) });
        if (this.maxInFlight === 1 && i + this.so.batchSize >= entries.length) {
          // The last commit of this dispatch is not awaited here: the loop reads the next batch meanwhile.
          const committing: Promise<void> = this.commit(reader, settled)
            .catch((error) => this.log.error('could not acknowledge; the entries will be delivered again', { error: messageOf(error) }))
            .finally(() => {
              if (reader.committing === committing) reader.committing = undefined;
            });
          reader.committing = committing;
        } else await this.commit(reader, settled);
        held.from = i + this.so.batchSize;
      }
    } finally {
      clearInterval(refresher);
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn);
    this.turn = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** The entry written into the message the kit made for it (no record object of its own). */
  private record(entry: Entry, into: DeliveredRecord): DeliveredRecord {
    into.topic = this.topicOf.get(entry.key) ?? entry.key;
    into.id = entry.id;
    into.value = EMPTY_VALUE;
    into.headers = {};
    into.deliveryCount = entry.deliveryCount;
    return fromFields(entry.fields, this.o.fields, into);
  }

  /**
   * One round trip: XACK of the acknowledged entries; the others (nacked or unsettled) are made
   * idle for claimIdleMs − nackDelayMs with `XCLAIM … IDLE … JUSTID`, so that any member's next
   * XAUTOCLAIM takes them after nackDelayMs (JUSTID: the claim itself does not count as a delivery).
   */
  private async commit(reader: Reader, settled: SettledBatch<Entry>): Promise<void> {
    const acked = groupByKey(settled.acked);
    const nacked = groupByKey(settled.nacked);
    const delay = this.stopped ? 0 : this.o.nackDelayMs;
    const commands: Command[] = [];
    for (const [key, list] of acked) {
      const xack: Command = ['xack', key, this.so.group];
      for (let i = 0; i < list.length; i++) xack.push((list[i] as Entry).id);
      commands.push(xack);
    }
    for (const [key, list] of nacked) {
      commands.push(['XCLAIM', key, this.so.group, this.so.consumerName, 0, ...list.map((e) => e.id), 'IDLE', this.o.claimIdleMs - delay, 'JUSTID']);
    }
    for (let attempt = 1; commands.length > 0; attempt++) {
      try {
        const client = await this.clientOf(reader);
        const replies = await this.guarded(reader, pipeline(client, commands), this.o.commandTimeoutMs, 'XACK');
        const failed = replies.find((r) => r.error);
        if (failed?.error) throw failed.error;
        break;
      } catch (error) {
        if (attempt >= 3 || isReplyError(error)) {
          // At-least-once still holds: the entries stay pending and are claimed again after claimIdleMs.
          this.log.error('could not acknowledge; the entries will be delivered again', {
            acked: [...acked.values()].reduce((n, l) => n + l.length, 0),
            nacked: [...nacked.values()].reduce((n, l) => n + l.length, 0),
            error: messageOf(error),
          });
          break;
        }
        await sleep(200 * attempt);
      }
    }
    if (nacked.size > 0) reader.nextClaimAt = Math.min(reader.nextClaimAt, Date.now() + delay);
  }

  /**
   * While entries are held (read and not yet committed), resets their idle time every claimIdleMs/3
   * (`XCLAIM … JUSTID` to ourselves) so no other member claims them from a long-running handler.
   * The XCLAIM's min-idle guard keeps us from taking back an entry another member has just claimed.
   */
  private refresher(reader: Reader, heldEntries: Held): NodeJS.Timeout {
    const every = Math.max(20, Math.floor(this.o.claimIdleMs / 3));
    let busy = false;
    const timer = setInterval(() => {
      const client = reader.client;
      if (busy || !client) return;
      const held = new Map<string, string[]>();
      for (const [key, list] of groupByKey(heldEntries.entries.slice(heldEntries.from))) held.set(key, list.map((e) => e.id));
      const commands: Command[] = [];
      for (const [key, ids] of held) {
        if (ids.length > 0) commands.push(['XCLAIM', key, this.so.group, this.so.consumerName, Math.floor(every / 2), ...ids, 'JUSTID']);
      }
      if (commands.length === 0) return;
      busy = true;
      this.guarded(reader, pipeline(client, commands), this.o.commandTimeoutMs, 'XCLAIM (refresh)')
        .then((replies) => {
          replies.forEach((reply, i) => {
            const key = (commands[i] as Command)[1] as string;
            const kept = new Set(Array.isArray(reply.value) ? reply.value.map(String) : []);
            // Entries committed while the XCLAIM was on its way are not lost: compare with what is still held.
            const stillHeld = new Set(heldEntries.entries.slice(heldEntries.from).map((e) => e.id));
            const lost = (held.get(key) ?? []).filter((id) => !kept.has(id) && stillHeld.has(id));
            if (reply.error || lost.length > 0) {
              this.log.warn('could not refresh held entries; another member may claim them', { stream: key, lost, error: reply.error ? messageOf(reply.error) : undefined });
            }
          });
        })
        .catch((error) => this.log.warn('could not refresh held entries', { error: messageOf(error) }))
        .finally(() => {
          busy = false;
        });
    }, every);
    return timer;
  }
}

function groupByKey<T extends { key: string }>(items: T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const list = out.get(item.key);
    if (list) list.push(item);
    else out.set(item.key, [item]);
  }
  return out;
}

function toEntries(reply: unknown): Entry[] {
  const entries: Entry[] = [];
  forEachEntry(reply, (key, id, fields) => {
    if (fields) entries.push({ key, id, fields, deliveryCount: 1 });
  });
  return entries;
}
