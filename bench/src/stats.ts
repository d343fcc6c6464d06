/** A figure measured several times: the median is reported, with the spread of the runs. */
export interface Stat {
  median: number;
  min: number;
  max: number;
  runs: number[];
  /** CPU time (user + system, ms) of this process during each measured run, in the order of `runs`. */
  cpuMs?: number[];
}

export function stat(runs: number[]): Stat {
  const sorted = [...runs].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), min: sorted[0] ?? Number.NaN, max: sorted[sorted.length - 1] ?? Number.NaN, runs };
}

/** Quantile of sorted values, linear interpolation between the closest ranks. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

/** Sides of one comparison, measured alternately (bus, raw, raw, bus…) so drift hits both alike. */
export type Sides = Record<string, () => Promise<number>>;

/** `gc()` when node runs with `--expose-gc` (`pnpm bench` does): one side's garbage is not left for the next to collect. */
const collect = (globalThis as { gc?: () => void }).gc;

/**
 * Runs every side `warmup` times (discarded), then `runs` rounds of every side. The order rotates per
 * round (bus, raw · raw, bus · …), so neither side always runs first or right after the other, and the
 * heap is collected before each call. Each call returns one figure (msg/s, ms…); `runs[i]` of every side
 * belongs to round i (see `pairedRatio`).
 */
export async function compare(sides: Sides, warmup: number, runs: number): Promise<Record<string, Stat>> {
  const names = Object.keys(sides);
  for (let i = 0; i < warmup; i++) for (const name of names) await (sides[name] as () => Promise<number>)();
  const values: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const cpu: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + i) % names.length] as string;
      collect?.();
      const before = process.cpuUsage();
      (values[name] as number[]).push(await (sides[name] as () => Promise<number>)());
      const used = process.cpuUsage(before);
      (cpu[name] as number[]).push((used.user + used.system) / 1000);
    }
  }
  return Object.fromEntries(names.map((n) => [n, { ...stat(values[n] as number[]), cpuMs: cpu[n] as number[] }]));
}

/**
 * bus ÷ other of each round, when both sides ran in the same rounds (`compare`): the median of these is
 * steadier than the ratio of the medians, because a round's two runs saw the same machine state.
 * Undefined when the sides' runs are not paired.
 */
export function pairedRatio(bus: Stat, other: Stat): Stat | undefined {
  if (bus.runs.length < 2 || bus.runs.length !== other.runs.length) return undefined;
  return stat(bus.runs.map((b, i) => b / (other.runs[i] as number)));
}

/**
 * CPU µs per message of each side (this process's user + system time over the run ÷ messages), as a
 * figure of its own: steadier than throughput on a shared machine. Lower is better.
 */
export function cpuPerMessage(values: Record<string, Stat>, messages: number): Record<string, Stat> {
  const out: Record<string, Stat> = {};
  for (const [name, s] of Object.entries(values)) if (s.cpuMs) out[name] = stat(s.cpuMs.map((ms) => (ms * 1000) / messages));
  return out;
}

/** Delay samples (ms) → p50 / p99. */
export function percentiles(samples: Float64Array | number[], count = samples.length): { p50: number; p99: number; max: number } {
  const sorted = Float64Array.from(samples.slice(0, count) as ArrayLike<number>).sort();
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted[sorted.length - 1] ?? Number.NaN };
}
