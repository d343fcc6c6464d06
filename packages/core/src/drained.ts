import { ConfigError, TimeoutError } from './errors.js';
import type { Transport } from './transport.js';

/** Options of `bus.drained()`. */
export interface DrainedOptions {
  /** Longest wait; then `drained()` rejects with a {@link TimeoutError} naming what still lags. @default 30_000 */
  timeoutMs?: number;
  /** Pause between two looks at the consumer groups. @default 100 */
  intervalMs?: number;
}

/** Defaults of {@link DrainedOptions}. */
export const DRAINED_DEFAULTS = { timeoutMs: 30_000, intervalMs: 100 } as const;

/**
 * What one started module reports to `bus.drained()`: the groups it reads and how many delivered
 * messages its handlers are still working on. The router fills it in; nothing else needs to.
 */
export class ConsumerActivity {
  /** Consumer groups this module reads, with their topics. */
  readonly groups: { group: string; topics: readonly string[] }[] = [];
  /** Messages delivered to this module's handlers and not settled yet. */
  inFlight = 0;

  constructor(readonly transport: Transport) {}

  /** Records a consumer group once its subscription started. */
  subscribed(group: string, topics: readonly string[]): void {
    this.groups.push({ group, topics });
  }

  /** Counts `count` messages as in flight until `work` settles. */
  async track(count: number, work: () => Promise<void>): Promise<void> {
    this.inFlight += count;
    try {
      await work();
    } finally {
      this.inFlight -= count;
    }
  }
}

/**
 * Resolves once no started module has a message in flight and every consumer group it reads has
 * neither lag (messages not delivered yet) nor pending messages (delivered, not acknowledged or
 * committed), as the transport's `lag()` reports them. Looks every `intervalMs`; rejects with a
 * {@link TimeoutError} after `timeoutMs`, and with a {@link ConfigError} when a transport has no `lag()`.
 */
export async function waitDrained(activities: () => readonly ConsumerActivity[], options: DrainedOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DRAINED_DEFAULTS.timeoutMs;
  const intervalMs = options.intervalMs ?? DRAINED_DEFAULTS.intervalMs;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new ConfigError('drained.timeoutMs', 'must be a number >= 0', timeoutMs);
  if (!Number.isFinite(intervalMs) || intervalMs < 1) throw new ConfigError('drained.intervalMs', 'must be a number >= 1', intervalMs);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy = await whatIsBusy(activities());
    if (busy.length === 0) return;
    if (Date.now() >= deadline) {
      throw new TimeoutError(`[bus] not drained within ${timeoutMs} ms: ${busy.slice(0, 5).join('; ')}${busy.length > 5 ? '; …' : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(1, deadline - Date.now()))));
  }
}

/** One line per consumer group or module that still has work; empty when everything is settled. */
async function whatIsBusy(activities: readonly ConsumerActivity[]): Promise<string[]> {
  const busy: string[] = [];
  for (const activity of activities) {
    const { transport } = activity;
    if (activity.inFlight > 0) busy.push(`${activity.inFlight} message(s) in flight on ${transport.name}`);
    if (activity.groups.length === 0) continue;
    if (typeof transport.lag !== 'function') {
      throw new ConfigError(`transports.${transport.name}.lag`, 'must be implemented for bus.drained()', undefined);
    }
    for (const { group, topics } of activity.groups) {
      for (const info of await transport.lag(group, topics)) {
        const pending = info.pending ?? 0;
        if (info.lag > 0 || pending > 0) busy.push(`group ${group} on ${info.topic}: lag ${info.lag}, pending ${pending}`);
      }
    }
  }
  return busy;
}
