import {
  type BatchHandler,
  BusError,
  ClosedError,
  ConnectionError,
  createPool,
  type LagInfo,
  type Logger,
  type Metrics,
  noopMetrics,
  type Pool,
  PoolTimeoutError,
  PublishError,
  type PublishResult,
  type SubscribeOptions,
  type Subscription,
  silentLogger,
  type Transport,
  type TransportCapabilities,
  type TransportContext,
  type WireRecord,
  type DelayedRecord,
} from '@bus/core';
import { connect, Deadlines, destroy, isCluster, isReplyError, makeClient, messageOf, targetOfOptions, toBusError } from './client.js';
import { type Command, num, parseFlat, pipeline } from './commands.js';
import { type RedisClient, type RedisStreamOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { addDelayed, DelayMover } from './delays.js';
import { openSubscription } from './subscription.js';
import { toFields } from './wire.js';

/** A {@link Transport} on Redis Streams, with the ioredis client it was made with exposed for tests and tools. */
export interface RedisStreamTransport extends Transport, AsyncDisposable {
  /** The stream key of a topic: `keyPrefix + topic`. */
  streamKey(topic: string): string;
  /** Runs `fn` with a pooled (non-blocking) connection, e.g. for administration. */
  withClient<R>(fn: (client: RedisClient) => Promise<R>): Promise<R>;
  /** The stream fields that carry a record's value and key (every other field is a header), for tools that read entries. */
  readonly fields: Readonly<{ value: string; key: string }>;
  /**
   * Entries this transport's subscriptions saw trimmed (by the `trim` hard caps, or deleted) before
   * their consumer group had them: lost for that group. Counted by the `retention` pass (off without it);
   * each occurrence is also logged as a warning.
   */
  readonly trimmedUnread: number;
}

const CAPABILITIES: TransportCapabilities = Object.freeze({
  persistent: true,
  consumerGroups: true,
  ordering: 'topic',
  nativeBatching: true,
  blockingReads: true,
  redeliversUnsettled: true,
  // One handler call at a time per subscription (its readers take turns).
  concurrentBatches: false,
  // The pending-entries list counts deliveries on the server.
  durableDeliveryCount: true,
  // A sorted set per topic, moved into the stream by a script run by every subscribed process.
  delays: true,
});

/**
 * A Redis Streams transport (ioredis), on a standalone server or a Redis Cluster.
 *
 * - Connects lazily: the first `publish` opens a pooled producer connection, each subscription opens
 *   its own blocking-read connection(s). Options are validated here, at construction
 *   (`ConfigError` naming the option, e.g. `[bus/redis] pool.max must be …`).
 * - `publish`: one `XADD` per record, all records of a call in one pipeline (one round trip); each
 *   result is the entry's stream id, or a `ConnectionError` / `PublishError`.
 * - `subscribe`: consumer group per `SubscribeOptions.group`, blocking `XREADGROUP`, batch `XACK`
 *   after the handler, `XAUTOCLAIM` of entries idle past `claimIdleMs` (dead members, nacks).
 * - `close()`: closes every subscription (waiting for running handlers), then the pool. Idempotent.
 *
 * Wire format: each header is a stream field of the same name; the key and value go under
 * `fields.key` / `fields.value` (`_key` / `_data` by default).
 */
export function redisStream(options: RedisStreamOptions = {}): RedisStreamTransport {
  const o = resolveOptions(options);
  let logger: Logger = silentLogger;
  let metrics: Metrics = noopMetrics;
  let pool: Pool<RedisClient> | undefined;
  let clusterMode: boolean | undefined = o.cluster ? true : o.createClient ? undefined : false;
  const subscriptions = new Set<Subscription>();
  let closing: Promise<void> | undefined;
  let trimmedUnread = 0;
  const streamKey = (topic: string) => o.keyPrefix + topic;
  const movers = new Map<string, DelayMover>();
  const moverOf = (topic: string): DelayMover => {
    let mover = movers.get(topic);
    if (!mover) {
      mover = new DelayMover(topic, streamKey(topic), o, withClient, () => trimArgs(o.trim), () => metrics, () => logger);
      movers.set(topic, mover);
    }
    return mover;
  };

  const poolOf = (): Pool<RedisClient> => {
    pool ??= createPool<RedisClient>(
      `${o.name}-producer`,
      {
        create: async () => {
          const client = makeClient(o, 'producer');
          clusterMode ??= isCluster(client);
          return connect(client, o.name, o.connectTimeoutMs);
        },
        destroy: async (client) => {
          // QUIT lets in-flight replies arrive; a dead connection is simply dropped.
          if (client.status === 'ready') await client.quit().catch(() => destroy(client));
          else destroy(client);
        },
        // State only, no PING: a publish costs one round trip. A client that is reconnecting stays
        // (its commands fail fast meanwhile); one that gave up is replaced.
        validate: (client) => client.status !== 'end' && client.status !== 'close',
      },
      o.pool,
      (stats) => metrics.poolStats({ transport: o.name, pool: 'producer' }, stats),
    );
    return pool;
  };

  const commandTarget = `[bus/${o.name}] a command to Redis at ${targetOfOptions(o)}`;
  // The deadlines of every command (publish, reads, acks): one timer for all of them.
  const deadlines = new Deadlines();
  const withClient = async <R>(fn: (client: RedisClient) => Promise<R>): Promise<R> => {
    if (closing) throw new ClosedError(`transport "${o.name}"`);
    // One deadline per use of a connection (not one timer per command): a connection that got no reply
    // in time is presumed dead and destroyed, not given back to the pool.
    let timedOut = false;
    try {
      return await poolOf().use(
        (client) =>
          deadlines.run(fn(client), o.commandTimeoutMs, commandTarget, () => {
            timedOut = true;
          }),
        (error) => timedOut || (!isReplyError(error) && messageOf(error).includes('Connection is closed')),
      );
    } catch (error) {
      // A pool timeout caused by a failing connect: report the connect error (host:port, reason).
      if (PoolTimeoutError.isInstance(error) && BusError.isInstance(error.cause)) throw error.cause;
      if (PoolTimeoutError.isInstance(error) && error.stillConnecting) {
        throw new ConnectionError(
          `[bus/${o.name}] no connection to Redis at ${targetOfOptions(o)} within ${error.timeoutMs} ms (pool.acquireTimeoutMs): ` +
            `the connect is still in progress (connectTimeoutMs ${o.connectTimeoutMs}); is a Redis server answering there?`,
          { cause: error },
        );
      }
      throw error;
    }
  };

  const transport: RedisStreamTransport = {
    specificationVersion: 'v1',
    name: o.name,
    capabilities: CAPABILITIES,
    streamKey,
    fields: Object.freeze({ ...o.fields }),

    attach(context: TransportContext) {
      logger = context.logger;
      metrics = context.metrics;
    },

    async publish(topic: string, records: readonly WireRecord[]): Promise<PublishResult[]> {
      if (closing) {
        const error = new ClosedError(`transport "${o.name}"`);
        return records.map(() => ({ ok: false, error }));
      }
      const results: PublishResult[] = new Array(records.length);
      const commands: Command[] = [];
      const index: number[] = [];
      const key = streamKey(topic);
      const trim = trimArgs(o.trim);
      for (let i = 0; i < records.length; i++) {
        try {
          // Lower case, as ioredis's own methods send it: ioredis lower-cases a command's name for each
          // of its flag checks (eight per command), which copies an upper-case name every time.
          commands.push(['xadd', key, ...trim, '*', ...toFields(records[i] as WireRecord, o.fields, o.name)]);
          index.push(i);
        } catch (error) {
          results[i] = { ok: false, error: toBusError(error, o.name, `could not publish to "${topic}"`) };
        }
      }
      if (commands.length > 0) {
        try {
          // WAIT rides in the same pipeline, so it goes to the node that took the XADDs.
          const sent: Command[] = o.waitReplicas > 0 ? [...commands, ['WAIT', o.waitReplicas, o.waitTimeoutMs]] : commands;
          const replies = sent === commands ? await withClient((client) => pipeline(client, commands)) : await withClient(async (client) => {
            let out = await pipeline(client, sent);
            if (isCluster(client) && out.some((r) => r.error && /^(MOVED|ASK) /.test(r.error.message))) {
              // After a Cluster failover ioredis follows a pipeline's MOVED only when no other command of
              // it succeeded; the WAIT (answered by the old node) did, so nothing was redirected and the
              // slot map stays stale. The XADDs were not executed: send them alone (ioredis follows the
              // MOVED and updates its map), then the WAIT next to a read of the same key, on the same node.
              out = await pipeline(client, commands);
              const [, wait] = await pipeline(client, [['XLEN', key], sent[sent.length - 1] as Command]);
              out.push(wait ?? { error: new Error('WAIT got no reply') });
            }
            return out;
          });
          const replicated = o.waitReplicas > 0 ? waitFailure(replies.pop(), o, topic) : undefined;
          replies.forEach((reply, j) => {
            const i = index[j] as number;
            const id = reply.error ? undefined : reply.value;
            results[i] =
              typeof id === 'string' && id.length > 0
                ? replicated
                  ? { ok: false, error: replicated }
                  : { ok: true, id }
                : { ok: false, error: toBusError(reply.error ?? new Error(`XADD returned ${String(id)}`), o.name, `XADD to "${topic}" failed`) };
          });
        } catch (error) {
          const busError = toBusError(error, o.name, `could not publish to "${topic}"`);
          for (const i of index) results[i] = { ok: false, error: busError };
        }
      }
      return results;
    },

    async publishDelayed(topic: string, records: readonly DelayedRecord[]): Promise<PublishResult[]> {
      if (closing) {
        const error = new ClosedError(`transport "${o.name}"`);
        return records.map(() => ({ ok: false, error }));
      }
      try {
        const results = await withClient((client) => addDelayed(client, streamKey(topic), topic, records, o));
        // This process moves the topic: it need not wait for its next look (a short delay may be due first).
        movers.get(topic)?.wake();
        return results;
      } catch (error) {
        const busError = toBusError(error, o.name, `could not publish delayed records to "${topic}"`);
        return records.map(() => ({ ok: false, error: busError }));
      }
    },

    async subscribe(subscribeOptions: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
      if (closing) throw new ClosedError(`transport "${o.name}"`);
      if (clusterMode === undefined) {
        // A user factory: find out whether it makes Cluster clients (that decides how reads are grouped).
        const probe = makeClient(o, 'reader');
        clusterMode = isCluster(probe);
        destroy(probe);
      }
      const subscription = await openSubscription(
        {
          options: o,
          logger,
          newReaderClient: () => makeClient(o, 'reader'),
          deadlines,
          clusterMode,
          streamKey,
          onClosed: (s) => subscriptions.delete(s),
          onTrimmedUnread: (_key, _group, count) => {
            trimmedUnread += count;
          },
        },
        subscribeOptions,
        handler,
      );
      if (closing) {
        await subscription.close();
        throw new ClosedError(`transport "${o.name}"`);
      }
      subscriptions.add(subscription);
      // While this process reads a topic, it moves the topic's due delayed entries into the stream.
      const topics = [...new Set(subscribeOptions.topics)];
      for (const topic of topics) moverOf(topic).acquire();
      let released: Promise<void> | undefined;
      return {
        close: async () => {
          await subscription.close();
          released ??= Promise.all(topics.map((topic) => moverOf(topic).release())).then(() => {});
          await released;
        },
      };
    },

    /** Lag and pending count per topic from `XINFO GROUPS` (the bus reports them to metrics). */
    async lag(group: string, topics: readonly string[]): Promise<LagInfo[]> {
      return withClient(async (client) => {
        // One call per stream: in a Cluster the streams may live on different nodes.
        const infos = await Promise.all(topics.map((topic) => groupInfo(client, streamKey(topic), group, o.name)));
        return topics.map((topic, i) => {
          const info = infos[i] as { lag: number; pending: number };
          return { group, topic, lag: info.lag, pending: info.pending };
        });
      });
    },

    /** `XGROUP DESTROY` on each stream (its pending entries go with the group); a missing stream or group is skipped. */
    async deleteGroup(group: string, topics: readonly string[]): Promise<void> {
      await withClient(async (client) => {
        // One call per stream: in a Cluster the streams may live on different nodes.
        await Promise.all(
          topics.map((topic) =>
            client.call('XGROUP', 'DESTROY', streamKey(topic), group).catch((error: unknown) => {
              // "ERR The XGROUP subcommand requires the key to exist": no stream, so no group either.
              if (!(isReplyError(error) && /requires the key to exist/i.test(messageOf(error)))) throw error;
            }),
          ),
        );
      }).catch((error) => {
        throw toBusError(error, o.name, `could not delete consumer group "${group}"`);
      });
    },

    withClient,

    get trimmedUnread() {
      return trimmedUnread;
    },

    close() {
      closing ??= (async () => {
        await Promise.allSettled([...subscriptions].map((s) => s.close()));
        await Promise.allSettled([...movers.values()].map((m) => m.halt()));
        await pool?.close();
        deadlines.close();
      })();
      return closing;
    },

    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
  return transport;
}

/**
 * The error of every record of a publish whose `WAIT` did not reach `waitReplicas` replicas in time
 * (undefined when it did). Retryable: the entries are on the master and may reach the replicas later,
 * or be lost in a failover; a retry can duplicate them.
 */
function waitFailure(reply: { error?: Error; value?: unknown } | undefined, o: ResolvedOptions, topic: string): PublishError | undefined {
  const acked = reply?.error ? undefined : num(reply?.value);
  if (acked !== undefined && acked >= o.waitReplicas) return undefined;
  const why = reply?.error ? messageOf(reply.error) : `${acked ?? 0} of ${o.waitReplicas} replicas acknowledged within ${o.waitTimeoutMs} ms`;
  return new PublishError(`[bus/${o.name}] publish to "${topic}" is not confirmed on the replicas (waitReplicas): ${why}; the entries may be lost in a failover or duplicated by a retry`, {
    cause: reply?.error,
    retryable: true,
  });
}

function trimArgs(trim: ResolvedOptions['trim']): (string | number)[] {
  const op = trim.exact ? '=' : '~';
  if (trim.maxLen !== undefined) return ['MAXLEN', op, trim.maxLen];
  if (trim.maxAgeMs !== undefined) return ['MINID', op, Math.max(0, Date.now() - trim.maxAgeMs)];
  return [];
}

/**
 * Lag and pending count of `group` on `key` from XINFO GROUPS (Redis ≥ 7.0 reports `lag`; when it
 * cannot — e.g. after XDEL/trimming past the group — the entries after the group's last delivered id
 * are counted, up to 100 000). A missing group lags by the whole stream.
 */
async function groupInfo(client: RedisClient, key: string, group: string, transport: string): Promise<{ lag: number; pending: number }> {
  const replies = await pipeline(client, [
    ['XINFO', 'GROUPS', key],
    ['XLEN', key],
  ]);
  // A stream that does not exist yet has no lag; any other error (NOPERM, a failover) is the answer,
  // never a lag of 0 that would tell an operator the group is drained.
  const failed = replies.find((r) => r.error && !/no such key/i.test(messageOf(r.error)))?.error;
  if (failed) throw toBusError(failed, transport, `could not read the lag of group "${group}" on "${key}"`);
  const length = num(replies[1]?.value) ?? 0;
  const groups = replies[0]?.error ? [] : ((replies[0]?.value as unknown[]) ?? []);
  const info = groups.map(parseFlat).find((g) => String(g.name) === group);
  if (!info) return { lag: length, pending: 0 };
  const pending = num(info.pending) ?? 0;
  const lag = num(info.lag);
  if (lag !== undefined) return { lag, pending };
  const last = String(info['last-delivered-id'] ?? '0-0');
  const [after] = await pipeline(client, [['XRANGE', key, `(${last}`, '+', 'COUNT', 100_000] satisfies Command]);
  if (after?.error) throw toBusError(after.error, transport, `could not read the lag of group "${group}" on "${key}"`);
  return { lag: Array.isArray(after?.value) ? after.value.length : length, pending };
}
