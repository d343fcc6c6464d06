import { ClosedError, ConfigError, type LagInfo } from '@bus/core';
import { Admin } from '@platformatic/kafka';
import { baseOptions, toBusError } from './client.js';
import type { ResolvedOptions } from './options.js';

/**
 * The transport's one admin client, made on first use: topic creation (or the existence check when
 * `topics.create` is false) and consumer lag. @platformatic/kafka reconnects broken connections itself.
 */
export class AdminClient {
  private admin: Admin | undefined;
  private closed = false;
  private readonly known = new Set<string>();
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(private readonly options: ResolvedOptions) {}

  private get client(): Admin {
    if (this.closed) throw new ClosedError('kafka transport');
    this.admin ??= new Admin(baseOptions(this.options, `${this.options.clientId}-admin`));
    return this.admin;
  }

  /** Makes sure every topic exists (creates the missing ones, or throws a `ConfigError` naming them); cached per process. */
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
    const { create, partitions, replicationFactor } = this.options.topics;
    try {
      const existing = await this.client.listTopics();
      for (const name of existing) this.known.add(name);
      if (this.known.has(topic)) return;
      if (!create) {
        throw new ConfigError('topics.create', `is false and topic "${topic}" does not exist (create it first, or set topics.create: true)`, false, 'bus/kafka-platformatic');
      }
      try {
        await this.client.createTopics({ topics: [topic], partitions, replicas: replicationFactor });
      } catch (error) {
        // Another process created it meanwhile.
        if (!/TOPIC_ALREADY_EXISTS|already exists/i.test(String((error as Error).message) + JSON.stringify((error as { errors?: unknown }).errors ?? ''))) throw error;
      }
      await this.waitForLeaders(topic, partitions);
    } catch (error) {
      throw toBusError(error, create ? `could not create topic "${topic}"` : `could not list topics to find "${topic}"`, this.options.brokers, 'config');
    }
    this.known.add(topic);
  }

  /** A created topic takes a moment to get leaders; producing or joining before that fails. */
  private async waitForLeaders(topic: string, partitions: number): Promise<void> {
    const deadline = Date.now() + this.options.requestTimeoutMs;
    for (;;) {
      const metadata = await this.client.metadata({ topics: [topic], forceUpdate: true }).catch(() => undefined);
      const t = metadata?.topics.get(topic);
      if (t && t.partitionsCount >= partitions && t.partitions.every((p) => p.leader >= 0)) return;
      if (Date.now() > deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /**
   * Lag of `group` per topic: high watermark − committed offset, summed over the partitions. A
   * partition the group never committed counts from its low watermark (the group would read it all).
   */
  async lag(group: string, topics: readonly string[]): Promise<LagInfo[]> {
    try {
      const admin = this.client;
      const metadata = await admin.metadata({ topics: [...topics] });
      const request = (timestamp: bigint) =>
        admin.listOffsets({
          topics: topics.map((name) => ({
            name,
            partitions: Array.from({ length: metadata.topics.get(name)?.partitionsCount ?? 0 }, (_, partitionIndex) => ({ partitionIndex, timestamp })),
          })),
        });
      const [high, low, committed] = await Promise.all([
        request(-1n),
        request(-2n),
        admin.listConsumerGroupOffsets({ groups: [{ groupId: group, topics: topics.map((name) => ({ name, partitionIndexes: Array.from({ length: metadata.topics.get(name)?.partitionsCount ?? 0 }, (_, i) => i) })) }] }),
      ]);
      const at = new Map<string, bigint>();
      for (const g of committed) for (const t of g.topics) for (const p of t.partitions) at.set(`${t.name}:${p.partitionIndex}`, p.committedOffset);
      const lows = new Map<string, bigint>();
      for (const t of low) for (const p of t.partitions) lows.set(`${t.name}:${p.partitionIndex}`, p.offset);
      return topics.map((topic) => {
        let lag = 0;
        for (const p of high.find((t) => t.name === topic)?.partitions ?? []) {
          const key = `${topic}:${p.partitionIndex}`;
          const c = at.get(key) ?? -1n;
          const from = c >= 0n ? c : (lows.get(key) ?? 0n);
          if (p.offset > from) lag += Number(p.offset - from);
        }
        return { group, topic, lag };
      });
    } catch (error) {
      throw toBusError(error, `could not read the lag of group "${group}"`, this.options.brokers, 'connection');
    }
  }

  /**
   * Deletes `group` (its committed offsets with it). A group the cluster does not know is no error;
   * one that still has members is (`NON_EMPTY_GROUP`: close them first).
   */
  async deleteGroup(group: string): Promise<void> {
    try {
      await this.client.deleteGroups({ groups: [group] });
    } catch (error) {
      if (onlyGroupNotFound(error)) return;
      throw toBusError(error, `could not delete consumer group "${group}"`, this.options.brokers, 'connection');
    }
  }

  /** Closes the admin client. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const admin = this.admin;
    this.admin = undefined;
    await admin?.close().catch(() => {});
  }
}

/** Whether every error inside `error` (a response error lists one per group) is GROUP_ID_NOT_FOUND. */
function onlyGroupNotFound(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  const e = error as { apiId?: string; errors?: unknown[]; cause?: unknown };
  if (e.apiId === 'GROUP_ID_NOT_FOUND') return true;
  if (Array.isArray(e.errors) && e.errors.length > 0) return e.errors.every((inner) => onlyGroupNotFound(inner, depth + 1));
  return onlyGroupNotFound(e.cause, depth + 1);
}
