/**
 * Consumer processes SIGKILLed: a private redis-server on `base`, `messages` published up front, two
 * consumer processes of one group; every `everyMs` one of them is SIGKILLed (`kills` times) and a new
 * one started. Entries the dead held are claimed by the others after claimIdleMs (1 s).
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { jsonCodec } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { spawnJsonLines, startRedisServer } from './child.js';
import { sleep } from './redis-topology.js';
import type { ChaosRow } from './row.js';

const CONSUMER = fileURLToPath(new URL('./redis-consumer.ts', import.meta.url));

export async function redisConsumerCrash(options: { base: number; messages: number; kills: number; everyMs: number; deadlineMs: number }): Promise<ChaosRow> {
  const started = Date.now();
  const deadline = started + options.deadlineMs;
  const server = await startRedisServer(options.base);
  const url = `redis://127.0.0.1:${options.base}`;
  const codec = jsonCodec();
  const topic = `crash-${randomUUID().slice(0, 6)}`;
  const handled = new Map<number, number>();
  const children = new Set<ChildProcess>();
  let published = 0;
  let lastKillAt = 0;
  let doneAt = 0;
  let kills = 0;
  try {
    const publisher = redisStream({ url, keyPrefix: 'bus-chaos:' });
    for (let i = 0; i < options.messages; i += 1000) {
      const results = await publisher.publish(
        topic,
        Array.from({ length: Math.min(1000, options.messages - i) }, (_, j) => codec.encode({ id: `m-${i + j}`, event: 'chaos', payload: { n: i + j }, publishedAt: Date.now(), headers: {} })),
      );
      published += results.filter((r) => r.ok).length;
    }
    await publisher.close();
    let serial = 0;
    const startConsumer = async () => {
      const child = await spawnJsonLines(CONSUMER, [url, topic, 'crash', `c${serial++}`], (line) => {
        for (const n of (line.n as number[] | undefined) ?? []) handled.set(n, (handled.get(n) ?? 0) + 1);
        if (handled.size >= published && doneAt === 0) doneAt = Date.now();
      });
      children.add(child);
      child.once('exit', () => children.delete(child));
    };
    await Promise.all([startConsumer(), startConsumer()]);
    for (let k = 0; k < options.kills && Date.now() < deadline && handled.size < published; k++) {
      await sleep(options.everyMs);
      const victim = [...children][0];
      victim?.kill('SIGKILL');
      kills++;
      lastKillAt = Date.now();
      await startConsumer();
    }
    while (Date.now() < deadline && handled.size < published) await sleep(200);
  } finally {
    for (const child of children) child.kill('SIGKILL');
    server.kill('SIGKILL');
  }
  let duplicates = 0;
  for (const count of handled.values()) duplicates += count - 1;
  return {
    scenario: `redis: consumer process SIGKILL x${kills}`,
    messages: options.messages,
    publishedOk: published,
    handled: handled.size,
    lost: published - handled.size,
    duplicates,
    deadLettered: 0,
    // From the last kill until every message was handled (the dead members' entries claimed after claimIdleMs).
    recoverMs: lastKillAt > 0 && doneAt > lastKillAt ? doneAt - lastKillAt : 0,
    detail: `${kills} SIGKILLs every ${options.everyMs} ms; claimIdleMs 1000`,
    seconds: (Date.now() - started) / 1000,
  };
}
