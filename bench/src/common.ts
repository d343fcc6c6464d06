import { randomBytes } from 'node:crypto';
import { pairedRatio, type Stat } from './stats.js';

/** A benchmark payload: `sentAt` (for end-to-end delay) and filler, JSON-encoded to about `bytes`. */
export interface Payload {
  sentAt: number;
  seq: number;
  data: string;
  /** End-to-end runs tag their messages, so a late message of an earlier run is not counted. */
  run?: number;
}

export type BenchEvents = { 'bench.event': Payload };
export const EVENT = 'bench.event';

/** A payload whose JSON is `bytes` long (± 2, `sentAt` varies in length). */
export function makePayload(bytes: number): Payload {
  const probe: Payload = { sentAt: 1_760_000_000_000.123, seq: 123456, data: '' };
  const filler = Math.max(0, bytes - JSON.stringify(probe).length);
  return { ...probe, data: 'x'.repeat(filler) };
}

/** Wall clock in ms with sub-ms resolution, comparable between the processes of this machine. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Unique per run, so that the shared Redis / Kafka never see two runs' keys mixed. */
export const RUN_ID = `${process.pid}-${randomBytes(3).toString('hex')}`;

/** Resolves when `done()` is true, polling; rejects after `timeoutMs`. Every wait of the bench is bounded. */
export async function waitFor(done: () => boolean, timeoutMs: number, what: string, everyMs = 2): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Counts handled messages up to `total`: `done` resolves at the last one (the handler calls `hit`),
 * or rejects after `timeoutMs`. Event-driven, unlike {@link waitFor}: no polling timer wakes the
 * process of the side being measured (it would add to that side's CPU per message alone).
 */
export function countdown(total: number, timeoutMs: number, what: string): { hit(): void; readonly count: number; done: Promise<void> } {
  let count = 0;
  let reached!: () => void;
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve, reject) => {
    reached = resolve;
    timer = setTimeout(() => reject(new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what} (${count}/${total})`)), timeoutMs);
  }).finally(() => clearTimeout(timer));
  if (total <= 0) reached();
  return {
    hit() {
      if (++count === total) reached();
    },
    get count() {
      return count;
    },
    done,
  };
}

/** One line of the results table. */
export interface Row {
  section: string;
  name: string;
  /** `msg/s` (higher is better) or `ms` / `MB` (lower is better). */
  unit: string;
  settings: string;
  /** Side name → figure. The first side is the bus; `ratio` is bus / `versus`. */
  values: Record<string, Stat>;
  versus?: string;
  /** bus ÷ versus: the median of the rounds' ratios when the sides ran paired, else of the medians. */
  ratio?: number;
  /** min–max of the rounds' ratios (paired sides only). */
  ratioSpread?: [number, number];
  note?: string;
}

export interface Ctx {
  redisUrl: string;
  kafkaBrokers: string[];
  warmup: number;
  runs: number;
  /** Scale of message counts (1 normal, smaller with --quick). */
  scale: number;
  rows: Row[];
  /** Raw figures for the JSON report (memory marks…). */
  details: Record<string, unknown>;
  log(message: string): void;
}

export function addRow(ctx: Ctx, row: Omit<Row, 'ratio' | 'ratioSpread'>): Row {
  const bus = row.values.bus;
  const other = row.versus ? row.values[row.versus] : undefined;
  const full: Row = { ...row };
  const paired = bus && other ? pairedRatio(bus, other) : undefined;
  if (paired) {
    full.ratio = paired.median;
    full.ratioSpread = [paired.min, paired.max];
  } else if (bus && other && other.median > 0) full.ratio = bus.median / other.median;
  ctx.rows.push(full);
  ctx.log(`  ${row.section} · ${row.name}: ${Object.entries(row.values)
    .map(([k, v]) => `${k} ${fmt(v.median)} [${fmt(v.min)}–${fmt(v.max)}]`)
    .join(' | ')}${full.ratio === undefined ? '' : ` | bus/${row.versus} ${full.ratio.toFixed(2)}${full.ratioSpread ? ` [${full.ratioSpread.map((r) => r.toFixed(2)).join('–')}]` : ''}`}`);
  return full;
}

export function fmt(n: number | undefined): string {
  if (n === undefined || Number.isNaN(n)) return '–';
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}
