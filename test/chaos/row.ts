/** One line of the chaos table. */
export interface ChaosRow {
  scenario: string;
  messages: number;
  /** Publishes that resolved ok (each message counted once, however many retries it took). */
  publishedOk: number;
  /** Distinct messages handled at least once. */
  handled: number;
  /** Published ok and never handled. */
  lost: number;
  /** Extra handler calls beyond the first, summed over messages. */
  duplicates: number;
  deadLettered: number;
  /**
   * From the fault to the last publish attempt that failed (how long publishing was out), in ms; when no
   * publish failed (Kafka: kafkajs retried them itself), the longest time until the partitions had new
   * leaders (or the restarted broker answered). Consumer kills: from the last kill until every message
   * was handled. SIGTERM drain: the longest time from SIGTERM to the process's exit. 0 where no fault.
   */
  recoverMs: number;
  detail: string;
  /** What the scenario checks besides loss (wrong dead letters, a drain that did not exit 0 in time, …): must be 0. */
  mismatches?: number;
  seconds: number;
}

/** The rows as one fixed-width table. */
export function formatTable(rows: readonly ChaosRow[]): string {
  const header = ['scenario', 'messages', 'published ok', 'handled', 'lost', 'duplicates', 'dead-lettered', 'recover ms', 'run s'];
  const lines = rows.map((r) => [r.scenario, r.messages, r.publishedOk, r.handled, r.lost, r.duplicates, r.deadLettered, r.recoverMs, r.seconds.toFixed(1)].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ')} |`;
  return [fmt(header), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...lines.map(fmt)].join('\n');
}

/** Handler calls beyond the first, from a map of message number → times handled. */
export function duplicatesOf(handled: ReadonlyMap<number, number>): number {
  let duplicates = 0;
  for (const count of handled.values()) duplicates += count - 1;
  return duplicates;
}

/** The message columns of a row: what was published ok, how much of it was handled, lost, twice. */
export function tally(ok: ReadonlySet<number>, handled: ReadonlyMap<number, number>): Pick<ChaosRow, 'publishedOk' | 'handled' | 'lost' | 'duplicates'> {
  let got = 0;
  for (const n of ok) if (handled.has(n)) got++;
  return { publishedOk: ok.size, handled: got, lost: ok.size - got, duplicates: duplicatesOf(handled) };
}
