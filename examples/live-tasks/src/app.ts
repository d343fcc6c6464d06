import { type Bus, type BatchEntry, createBus, defineModule, type HandlerContext, type Metrics, type Transport } from '@bus/core';
import { type Completion, DailyLiveTask } from './daily-task.js';
import { LIVE_TOPIC, type LiveEvents, liveEvents } from './events.js';

/** Applies the daily-task rule to one message: in memory ({@link DailyLiveTask}) or shared (`SharedDailyLiveTask`). */
export interface DailyTask {
  handle(ctx: HandlerContext<LiveEvents>): void | Promise<void>;
}

/**
 * The `tasks` module: one consumer subscribed to both live events. Progress is kept in this process
 * unless a shared `task` is given (needed when the module runs as several worker processes).
 */
export function tasksModule(onComplete: (completion: Completion) => void, task: DailyTask = new DailyLiveTask(onComplete)) {
  return defineModule<LiveEvents>({
    name: 'tasks',
    batchSize: 50,
    pollIntervalMs: 200,
    consumers: {
      'daily-live-60min-100yuan': { topics: [LIVE_TOPIC], events: ['anchor.income', 'live.duration'] },
    },
    handler: (ctx) => {
      switch (ctx.consumer) {
        case 'daily-live-60min-100yuan':
          return task.handle(ctx);
        default:
          throw new Error(`no logic for consumer ${ctx.consumer}`);
      }
    },
  });
}

/** A day of streaming: three anchors, of whom two finish the task. Deterministic. */
export function dayOfStreaming(day = '2026-11-28'): BatchEntry<LiveEvents>[] {
  const at = (hour: number) => `${day}T${String(hour).padStart(2, '0')}:00:00.000Z`;
  const entries: BatchEntry<LiveEvents>[] = [];
  const live = (anchorId: string, minutes: number, hour: number) =>
    entries.push({ event: 'live.duration', payload: { anchorId, minutes, at: at(hour) }, key: anchorId });
  const income = (anchorId: string, amount: number, hour: number) =>
    entries.push({ event: 'anchor.income', payload: { anchorId, amount, at: at(hour) }, key: anchorId });
  // lina: 75 minutes, 120 yuan → done
  live('lina', 30, 9);
  income('lina', 50, 9);
  live('lina', 45, 10);
  income('lina', 70, 11);
  // chen: 90 minutes but 80 yuan → not done
  live('chen', 90, 12);
  income('chen', 30, 12);
  income('chen', 50, 13);
  // wang: 100 yuan first, then 60 minutes in small sessions → done
  income('wang', 100, 14);
  for (let h = 15; h < 21; h++) live('wang', 10, h);
  return entries;
}

/** Wires the bus: any transport, the `tasks` module, and metrics when given (e.g. `prometheus()`). */
export function liveTasksBus(transport: Transport, onComplete: (completion: Completion) => void, options: { metrics?: Metrics } = {}): Bus<LiveEvents> {
  return createBus({ events: liveEvents, transports: { [transport.name]: transport }, source: 'live-app', ...options }).module(tasksModule(onComplete));
}
