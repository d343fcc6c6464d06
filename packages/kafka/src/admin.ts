import { ClosedError, ConfigError, type LagInfo } from '@bus/core';
import type { Admin, Kafka } from 'kafkajs';
import { connectWithin, isConnectionError, toBusError } from './client.js';
import type { ResolvedOptions } from './options.js';

/** Errors of a topic creation that the brokers' metadata has not caught up with yet. */
const METADATA_LAG = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION', 'NOT_LEADER_OR_FOLLOWER']);

/** Whether `error`, or an error it wraps (kafkajs retries wrap the last one), is a {@link METADATA_LAG}. */
function isMetadataLag(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  const e = error as { type?: string; originalError?: unknown; cause?: unknown; errors?: unknown[] };
  if (e.type && METADATA_LAG.has(e.type)) return true;
  return [e.originalError, e.cause, ...(Array.isArray(e.errors) ? e.errors : [])].some((inner) => isMetadataLag(inner, depth + 1));
}

/**
 * The transport's one admin connection, opened on first use: topic creation (or the existence check
 * when `topics.create` is false) and consumer lag.
 */
export class AdminClient {
  private admin: Promise<Admin> | undefined;
  private closed = false;
  private readonly known = new Set<string>();
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(
    private readonly client: () => Kafka,
    private readonly options: ResolvedOptions,
  ) {}

  private connect(): Promise<Admin> {
    if (this.closed) return Promise.reject(new ClosedError('kafka transport'));
    this.admin ??= (async () => {
      const admin = this.client().admin({ retry: { retries: this.options.retry.retries } });
      try {
        await connectWithin(admin, this.options, 'could not connect the admin client');
      } catch (error) {
        this.admin = undefined;
        throw error;
      }
      if (this.closed) {
        await admin.disconnect().catch(() => {});
        throw new ClosedError('kafka transport');
      }
      return admin;
    })();
    return this.admin;
  }

  /** Runs `fn` on the admin client; a broken connection is dropped so the next call reconnects. */
  private async use<R>(fn: (admin: Admin) => Promise<R>): Promise<R> {
    const pending = this.connect();
    const admin = await pending;
    try {
      return await fn(admin);
    } catch (error) {
      if (isConnectionError(error) && this.admin === pending) {
        this.admin = undefined;
        await admin.disconnect().catch(() => {});
      }
      throw error;
    }
  }

  /**
   * Makes sure every topic exists: creates the missing ones (`topics.create`), or throws a
   * {@link ConfigError} naming them. Known topics are cached, so this costs one round trip per topic
   * and process.
   */
  async ensureTopics(topics: readonly string[]): Promise<void> {
    const work: Promise<void>[] = [];
    for (const topic of topics) {
      if (this.known.has(topic)) continue;
      let pending = this.inflight.get(topic);
      if (!pending) {
        pending = this.ensureTopic(topic).finally(() => this.inflight.delete(topic));
        this.inflight.set(topic, pending);
      }
      work.push(pending);
    }
    if (work.length > 0) await Promise.all(work);
  }

  private async ensureTopic(topic: string): Promise<void> {
    const { create, partitions, replicationFactor, minInsyncReplicas } = this.options.topics;
    const configEntries = minInsyncReplicas === undefined ? [] : [{ name: 'min.insync.replicas', value: String(minInsyncReplicas) }];
    try {
      if (create) {
        for (let attempt = 1; ; attempt++) {
          try {
            await this.use((admin) =>
              admin.createTopics({
                topics: [{ topic, numPartitions: partitions, replicationFactor, configEntries }],
                waitForLeaders: true,
                timeout: this.options.requestTimeoutMs,
              }),
            );
            break;
          } catch (error) {
            // kafkajs gives up waiting for leaders when a broker does not know the new topic yet
            // (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE) although the topic was created;
            // asking again answers "already exists" once the metadata has spread.
            if (attempt >= 5 || !isMetadataLag(error)) throw error;
            await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
          }
        }
      } else {
        const existing = await this.use((admin) => admin.listTopics());
        for (const name of existing) this.known.add(name);
        if (!this.known.has(topic)) {
          throw new ConfigError('topics.create', `is false and topic "${topic}" does not exist (create it first, or set topics.create: true)`, false, 'bus/kafka');
        }
      }
    } catch (error) {
      throw toBusError(error, create ? `could not create topic "${topic}"` : `could not list topics to find "${topic}"`, 'config');
    }
    this.known.add(topic);
  }

  /** The names of every topic of the cluster (also remembered as known). */
  async listTopics(): Promise<string[]> {
    const names = await this.use((admin) => admin.listTopics());
    for (const name of names) this.known.add(name);
    return names;
  }

  /**
   * Lag of `group` per topic: high watermark − committed offset, summed over the partitions. A
   * partition the group never committed counts from its low watermark (the group would read it all).
   */
  async lag(group: string, topics: readonly string[]): Promise<LagInfo[]> {
    return this.use(async (admin) => {
      const committed = await admin.fetchOffsets({ groupId: group, topics: [...topics] });
      const byTopic = new Map(committed.map((t) => [t.topic, new Map(t.partitions.map((p) => [p.partition, Number(p.offset)]))]));
      return Promise.all(
        topics.map(async (topic) => {
          const watermarks = await admin.fetchTopicOffsets(topic);
          let lag = 0;
          for (const p of watermarks) {
            const high = Number(p.high);
            const at = byTopic.get(topic)?.get(p.partition) ?? -1;
            lag += Math.max(0, high - (at >= 0 ? at : Number(p.low)));
          }
          return { group, topic, lag };
        }),
      );
    });
  }

  /**
   * Deletes `group` (its committed offsets with it). A group the cluster does not know is no error;
   * one that still has members is (`NON_EMPTY_GROUP`: close them first).
   */
  async deleteGroup(group: string): Promise<void> {
    try {
      await this.use((admin) => admin.deleteGroups([group]));
    } catch (error) {
      const groups = (error as { groups?: { error?: { type?: string } }[] }).groups;
      if (Array.isArray(groups) && groups.length > 0 && groups.every((g) => g.error?.type === 'GROUP_ID_NOT_FOUND')) return;
      throw toBusError(error, `could not delete consumer group "${group}"`, 'connection');
    }
  }

  /** Closes the admin connection. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const pending = this.admin;
    this.admin = undefined;
    if (!pending) return;
    const admin = await pending.catch(() => undefined);
    await admin?.disconnect().catch(() => {});
  }
}
