import type { ConsumersDeclaration, LagInfo } from '@bus/core';
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
          const read = async (g: string, t: string): Promise<LagInfo | undefined> => {
            try {
              return (await transport.lag?.(g, [t]))?.find((l) => l.topic === t);
            } catch (error) {
              errors.push(`${t}: ${(error as Error)?.message ?? error}`);
              return undefined;
            }
          };
          const info = await read(group, topic);
          const dlq = m.deadLetterTopic ? m.deadLetterTopic(topic) : deadLetterTopicOf(topic);
          const dead = await read(DLQ_REPLAY_GROUP, dlq);
          rows.push({
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
          });
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

export function formatStatus(rows: readonly StatusRow[]): string {
  const n = (v: number | undefined) => (v === undefined ? '-' : String(v));
  const table = formatTable(
    ['MODULE', 'CONSUMER', 'GROUP', 'TRANSPORT', 'TOPIC', 'LAG', 'PENDING', 'DEAD-LETTERS'],
    rows.map((r) => [r.module, r.consumer, r.group, r.transport, r.topic, n(r.lag), n(r.pending), `${n(r.deadLetters)} (${r.deadLetterTopic})`]),
  );
  const notes = rows.filter((r) => r.error).map((r) => `  ${r.group}: ${r.error}`);
  return notes.length ? `${table}\n\nnot readable ("-"):\n${notes.join('\n')}` : table;
}
