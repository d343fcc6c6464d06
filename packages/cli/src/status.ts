import { readOverview } from '@bus/board';
import { createBusFromConfig } from '@bus/runtime';
import type { LoadedConfig } from './load.js';

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

/**
 * Lag, pending and dead letters of every consumer group of the given modules, from `transport.lag()`
 * (read by `@bus/board`'s `readOverview`, the same numbers the board shows).
 */
export async function readStatus(loaded: LoadedConfig, names: readonly string[]): Promise<StatusRow[]> {
  const bus = createBusFromConfig(loaded.config);
  try {
    const modules = (loaded.config.modules ?? []).filter((m) => names.includes(m.name) && bus.transports[m.transport ?? bus.defaultTransport]);
    const overview = await readOverview(bus.transports, bus.defaultTransport, modules);
    return overview.modules.flatMap((m) =>
      m.consumers.flatMap((c) =>
        c.topics.map((t) => ({
          ...(t.error ? { error: t.error } : {}),
          module: m.module,
          consumer: c.consumer,
          group: c.group,
          transport: m.transport,
          topic: t.topic,
          lag: t.lag,
          pending: t.pending,
          deadLetterTopic: t.deadLetterTopic,
          deadLetters: t.deadLetters,
        })),
      ),
    );
  } finally {
    await bus.close();
  }
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
