import type { HandlerContext } from '@bus/core';
import type { LiveEvents } from './events.js';

export const DAILY_MINUTES = 60;
export const DAILY_INCOME = 100;

export interface Completion {
  anchorId: string;
  day: string;
  minutes: number;
  income: number;
}

/**
 * Consumer `daily-live-60min-100yuan`: a streamer completes the daily task once they have been live for
 * at least 60 minutes and earned at least 100 yuan on the same (UTC) day. Reports each completion once,
 * even when a message is delivered twice (at-least-once delivery): progress is counted per message id.
 */
export class DailyLiveTask {
  private readonly progress = new Map<string, { minutes: number; income: number; done: boolean }>();
  private readonly seen = new Set<string>();

  constructor(private readonly onComplete: (completion: Completion) => void) {}

  handle(ctx: HandlerContext<LiveEvents>): void {
    if (this.seen.has(ctx.message.id)) return;
    this.seen.add(ctx.message.id);
    const day = ctx.payload.at.slice(0, 10);
    const key = `${ctx.payload.anchorId}/${day}`;
    const state = this.progress.get(key) ?? { minutes: 0, income: 0, done: false };
    if (ctx.event === 'anchor.income') state.income += ctx.payload.amount;
    else state.minutes += ctx.payload.minutes;
    this.progress.set(key, state);
    if (!state.done && state.minutes >= DAILY_MINUTES && state.income >= DAILY_INCOME) {
      state.done = true;
      this.onComplete({ anchorId: ctx.payload.anchorId, day, minutes: state.minutes, income: state.income });
    }
  }
}
