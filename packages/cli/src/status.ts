import { type ConsumersDeclaration, type LagInfo, redactUrl } from '@bus/core';
import { createBusFromConfig } from '@bus/runtime';
import type { LoadedConfig } from './load.js';
import { DLQ_REPLAY_GROUP, deadLetterTopicOf } from './dlq.js';

/** One line of `bus status`. */
export interface StatusRow {
  module: string;
  consumer: string;
  group: string;
  transport: string;
  topic: string;
  /** Messages not yet delivered to the group; undefined when the transport cannot tell. */
  lag: number | undefined;
  /** Delivered, not yet acknowledged (Redis pending entries). */
  pending: number | undefined;
  deadLetterTopic: string;
  /** Messages in the dead-letter topic not yet replayed by `bus dlq replay`. */
  deadLetters: number | undefined;
  /** Why lag or dead letters could not be read (e.g. the topic does not exist yet). */
  error?: string;
}

const causes = new WeakMap<StatusRow, unknown>();

/** The error behind a row's `error` (the first one), with its cause chain; undefined for a readable row. */
export function causeOf(row: StatusRow): unknown {
  return causes.get(row);
}

/** Lag, pending and dead letters of every consumer group of the given modules, from `transport.lag()`. */
export async function readStatus(loaded: LoadedConfig, names: readonly string[]): Promise<StatusRow[]> {
  const bus = createBusFromConfig(loaded.config);
  const rows: StatusRow[] = [];
  try {
    for (const m of loaded.config.modules ?? []) {
      if (!names.includes(m.name)) continue;
      const transportName = m.transport ?? bus.defaultTransport;
      const transport = bus.transports[transportName];
      if (!transport) continue;
      const consumers: ConsumersDeclaration = typeof m.consumers === 'function' ? await m.consumers() : m.consumers;
      for (const [consumer, decl] of Object.entries(consumers)) {
        const group = `${m.name}-${consumer}`;
        for (const topic of decl.topics) {
          // One topic per call: a topic the broker does not know fails alone, not the whole report.
          const errors: string[] = [];
          let firstError: unknown;
          const read = async (g: string, t: string): Promise<LagInfo | undefined> => {
            try {
              return (await transport.lag?.(g, [t]))?.find((l) => l.topic === t);
            } catch (error) {
              firstError ??= error;
              errors.push(`${t}: ${redactUrl((error as Error)?.message ?? String(error))}`);
              return undefined;
            }
          };
          const dlq = m.deadLetterTopic ? m.deadLetterTopic(topic) : deadLetterTopicOf(topic);
          // Both at once: a broker that does not answer costs one wait, not two.
          const [info, dead] = await Promise.all([read(group, topic), read(DLQ_REPLAY_GROUP, dlq)]);
          const row: StatusRow = {
            ...(errors.length ? { error: errors.join('; ') } : {}),
            module: m.name,
            consumer,
            group,
            transport: transportName,
            topic,
            lag: info?.lag,
            pending: info?.pending,
            deadLetterTopic: dlq,
            deadLetters: dead?.lag,
          };
          if (firstError !== undefined) causes.set(row, firstError);
          rows.push(row);
        }
      }
    }
  } finally {
    await bus.close();
  }
  return rows;
}

/** Rows as an aligned text table. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** What a row means at a glance: `ok`, `behind` (lag or pending), `dead letters`, or `unreadable`. */
export function stateOf(row: StatusRow): 'ok' | 'behind' | 'dead letters' | 'unreadable' {
  if (row.error !== undefined) return 'unreadable';
  if ((row.deadLetters ?? 0) > 0) return 'dead letters';
  if ((row.lag ?? 0) > 0 || (row.pending ?? 0) > 0) return 'behind';
  return 'ok';
}

/**
 * `bus status` as text: one aligned row per module, consumer and topic with a STATE column, a one-line
 * summary, and each distinct reason a number could not be read (shown as "-") once.
 */
export function formatStatus(rows: readonly StatusRow[]): string {
  if (rows.length === 0) return 'no consumers to report';
  const n = (v: number | undefined) => (v === undefined ? '-' : String(v));
  const table = formatTable(
    ['MODULE', 'CONSUMER', 'GROUP', 'TRANSPORT', 'TOPIC', 'LAG', 'PENDING', 'DEAD-LETTERS', 'STATE'],
    rows.map((r) => [r.module, r.consumer, r.group, r.transport, r.topic, n(r.lag), n(r.pending), `${n(r.deadLetters)} (${r.deadLetterTopic})`, stateOf(r)]),
  );
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(stateOf(r), (counts.get(stateOf(r)) ?? 0) + 1);
  const summary = `${rows.length} row(s): ${[...counts].map(([state, count]) => `${count} ${state}`).join(', ')}`;
  const reasons = new Map<string, string[]>();
  for (const r of rows) if (r.error !== undefined) reasons.set(r.error, [...(reasons.get(r.error) ?? []), r.group]);
  const notes = [...reasons].map(([reason, groups]) => `  ${[...new Set(groups)].join(', ')}: ${reason}`);
  return [table, '', summary, ...(notes.length ? ['', 'not readable ("-"):', ...notes] : [])].join('\n');
}
