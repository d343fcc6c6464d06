import { type ConsumersDeclaration, type LagInfo, redact, redactUrl, type Transport } from '@bus/core';
import type { WorkerInfo } from '@bus/runtime';
import type { ConsumerCounts, CountsSource } from './counters.js';
import { DLQ_REPLAY_GROUP, deadLetterTopicOf } from './dead-letters.js';

/** What the board needs of a module: a `ModuleDefinition` or a config file's module fits. */
export interface BoardModule {
  name: string;
  /** Transport name; the bus's default when absent. */
  transport?: string;
  consumers: ConsumersDeclaration | (() => ConsumersDeclaration | Promise<ConsumersDeclaration>);
  deadLetterTopic?: (topic: string) => string;
  /** Worker processes under `bus run` (shown as configured). */
  processes?: number;
}

/** One consumer group on one topic. */
export interface TopicRow {
  topic: string;
  /** Messages not yet delivered to the group; undefined when the transport cannot tell. */
  lag: number | undefined;
  /** Delivered, not yet acknowledged (Redis pending entries). */
  pending: number | undefined;
  deadLetterTopic: string;
  /** Dead letters not replayed yet (lag of the `bus-dlq-replay` group). */
  deadLetters: number | undefined;
  /** Handled / failed counts in this process, when the board has counters. */
  handled: number | undefined;
  failed: number | undefined;
  /** Why lag or dead letters could not be read (credentials redacted). */
  error?: string;
}

export interface ConsumerRow {
  consumer: string;
  group: string;
  events: string[];
  topics: TopicRow[];
}

/** The worker processes of a module under `bus run`, from the supervisor. */
export interface WorkersRow {
  /** Slots of the module. */
  total: number;
  /** Processes alive (starting, ready or draining). */
  alive: number;
  ready: number;
  /** Restarts of all slots since the supervisor started. */
  restarts: number;
  pids: number[];
}

export interface ModuleRow {
  module: string;
  transport: string;
  /** The transport's kind (`redis`, `kafka`, `memory`…). */
  kind: string;
  /** Configured worker processes (`processes` of a config file's module). */
  processes: number | undefined;
  /** Live worker state, when the board runs in the `bus run` parent (`BoardOptions.workers`). */
  workers?: WorkersRow;
  consumers: ConsumerRow[];
  error?: string;
}

export interface TransportRow {
  name: string;
  kind: string;
  /** Its options where it exposes them, with every credential replaced by `***`. */
  options: string | undefined;
}

export interface Overview {
  at: string;
  modules: ModuleRow[];
  transports: TransportRow[];
}

/** A short, redacted text of an error. */
export function errorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return redactUrl(message).slice(0, 500);
}

/**
 * Reads lag, pending and dead letters of every consumer group of `modules` with `transport.lag()`,
 * one call per topic so a topic the broker does not know fails alone.
 */
export async function readOverview(
  transports: Readonly<Record<string, Transport>>,
  defaultTransport: string,
  modules: readonly BoardModule[],
  counters?: CountsSource,
  workers?: () => readonly WorkerInfo[],
): Promise<Overview> {
  let countsOf: ((module: string, consumer: string, topic: string) => ConsumerCounts | undefined) | undefined;
  if (typeof counters === 'function') {
    // Asked once per overview (e.g. of every `bus run` worker over IPC); a failure leaves counts out.
    const snapshot = await counters().catch(() => undefined);
    if (snapshot) {
      const byKey = new Map(snapshot.map((c) => [JSON.stringify([c.module, c.consumer, c.topic]), c]));
      countsOf = (module, consumer, topic) => byKey.get(JSON.stringify([module, consumer, topic])) ?? { handled: 0, failed: 0, deadLettered: 0 };
    }
  } else if (counters) {
    countsOf = (module, consumer, topic) => counters.counts(module, consumer, topic);
  }
  let slots: readonly WorkerInfo[] | undefined;
  try {
    slots = workers?.();
  } catch {
    slots = undefined;
  }
  const out: Overview = { at: new Date().toISOString(), modules: [], transports: describeTransports(transports) };
  await Promise.all(
    modules.map(async (m, i) => {
      const transportName = m.transport ?? defaultTransport;
      const transport = transports[transportName];
      const row: ModuleRow = { module: m.name, transport: transportName, kind: transport?.name ?? '?', processes: m.processes, consumers: [] };
      out.modules[i] = row;
      const mine = slots?.filter((w) => w.group === m.name);
      if (mine && mine.length > 0) row.workers = workersRow(mine);
      if (!transport) {
        row.error = `no transport "${transportName}"`;
        return;
      }
      let consumers: ConsumersDeclaration;
      try {
        consumers = typeof m.consumers === 'function' ? await m.consumers() : m.consumers;
      } catch (error) {
        row.error = errorText(error);
        return;
      }
      const read = async (group: string, topic: string, errors: string[]): Promise<LagInfo | undefined> => {
        try {
          return (await transport.lag?.(group, [topic]))?.find((l) => l.topic === topic);
        } catch (error) {
          errors.push(`${topic}: ${errorText(error)}`);
          return undefined;
        }
      };
      row.consumers = await Promise.all(
        Object.entries(consumers).map(async ([consumer, decl]) => {
          const group = `${m.name}-${consumer}`;
          const topics = await Promise.all(
            decl.topics.map(async (topic): Promise<TopicRow> => {
              const errors: string[] = [];
              const dlq = m.deadLetterTopic ? m.deadLetterTopic(topic) : deadLetterTopicOf(topic);
              const [info, dead] = await Promise.all([read(group, topic, errors), read(DLQ_REPLAY_GROUP, dlq, errors)]);
              const counts = countsOf?.(m.name, consumer, topic);
              return {
                topic,
                lag: info?.lag,
                pending: info?.pending,
                deadLetterTopic: dlq,
                deadLetters: dead?.lag,
                handled: counts?.handled,
                failed: counts?.failed,
                ...(errors.length ? { error: errors.join('; ') } : {}),
              };
            }),
          );
          return { consumer, group, events: [...decl.events], topics };
        }),
      );
    }),
  );
  return out;
}

function describeTransports(transports: Readonly<Record<string, Transport>>): TransportRow[] {
  return Object.entries(transports).map(([name, t]) => {
    const options = (t as { options?: unknown }).options;
    let text: string | undefined;
    if (options && typeof options === 'object') {
      // Functions (client factories, loggers) say nothing useful and may close over secrets.
      const json = JSON.stringify(redact(options), (_k, v) => (typeof v === 'function' ? undefined : v));
      text = json && json.length > 600 ? `${json.slice(0, 600)}…` : json;
    }
    return { name, kind: t.name, options: text };
  });
}

function workersRow(slots: readonly WorkerInfo[]): WorkersRow {
  const alive = slots.filter((w) => w.pid !== undefined && (w.status === 'starting' || w.status === 'ready' || w.status === 'draining'));
  return {
    total: slots.length,
    alive: alive.length,
    ready: slots.filter((w) => w.status === 'ready').length,
    restarts: slots.reduce((sum, w) => sum + w.restarts, 0),
    pids: alive.map((w) => w.pid as number),
  };
}
