import type { HandlerContext } from '@bus/core';
import type { Redis } from 'ioredis';
import { type Completion, DAILY_INCOME, DAILY_MINUTES } from './daily-task.js';
import type { LiveEvents } from './events.js';

/** Header naming the demo run a message belongs to, so progress of two runs never mixes. */
export const RUN_HEADER = 'x-live-run';

// One atomic step per message: skip an id seen before (at-least-once delivery), add its minutes or
// yuan, and mark the task done once (HSETNX) when both thresholds are reached.
const STEP = `
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return false end
redis.call('EXPIRE', KEYS[1], 86400)
redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], 86400)
local minutes = tonumber(redis.call('HGET', KEYS[2], 'minutes') or '0')
local income = tonumber(redis.call('HGET', KEYS[2], 'income') or '0')
if minutes >= tonumber(ARGV[4]) and income >= tonumber(ARGV[5]) and redis.call('HSETNX', KEYS[2], 'done', '1') == 1 then
  local completion = cjson.encode({ anchorId = ARGV[6], day = ARGV[7], minutes = minutes, income = income })
  redis.call('RPUSH', KEYS[3], completion)
  redis.call('EXPIRE', KEYS[3], 86400)
  return completion
end
return false
`;

const keys = (run: string) => ({
  seen: `live-tasks:${run}:seen`,
  progress: (anchorId: string, day: string) => `live-tasks:${run}:progress:${anchorId}/${day}`,
  completed: `live-tasks:${run}:completed`,
});

/**
 * The daily task with its progress in Redis, for when the `tasks` module runs as several worker
 * processes: the workers of one consumer group share the messages (Redis gives them to whichever
 * reads first; Kafka by partition), so no process sees all of a streamer's events. Same rule as
 * {@link DailyLiveTask}; each completion is reported once, by the process that completed it.
 */
export class SharedDailyLiveTask {
  constructor(
    private readonly redis: Redis,
    private readonly onComplete: (completion: Completion) => void,
  ) {}

  async handle(ctx: HandlerContext<LiveEvents>): Promise<void> {
    const run = ctx.message.headers[RUN_HEADER] ?? 'default';
    const k = keys(run);
    const day = ctx.payload.at.slice(0, 10);
    const [field, amount] = ctx.event === 'anchor.income' ? ['income', ctx.payload.amount] : ['minutes', ctx.payload.minutes];
    const result = (await this.redis.eval(
      STEP,
      3,
      k.seen,
      k.progress(ctx.payload.anchorId, day),
      k.completed,
      ctx.message.id,
      field,
      String(amount),
      String(DAILY_MINUTES),
      String(DAILY_INCOME),
      ctx.payload.anchorId,
      day,
    )) as string | null;
    if (result) this.onComplete(JSON.parse(result) as Completion);
  }

  /** Completions of one run, in the order they happened. */
  async completions(run: string): Promise<Completion[]> {
    const list = await this.redis.lrange(keys(run).completed, 0, -1);
    return list.map((c) => JSON.parse(c) as Completion);
  }
}
