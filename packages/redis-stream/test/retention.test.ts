import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { jsonCodec, type Logger, noopMetrics } from '@bus/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type RedisStreamTransport, redisStream } from '../src/index.js';
import { deleteKeys, nodeOf, SHARED_REDIS_URL } from './helpers/servers.js';

const exec = promisify(execFile);
const prefix = `bus-test:${randomUUID().slice(0, 8)}:`;
const node = nodeOf(SHARED_REDIS_URL);
const codec = jsonCodec();
const transports: RedisStreamTransport[] = [];
const make = (options: Parameters<typeof redisStream>[0] = {}) => {
  const t = redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix, ...options });
  transports.push(t);
  return t;
};
const cli = async (...args: string[]) => (await exec('redis-cli', ['-h', node.host, '-p', String(node.port), ...args], { timeout: 10_000, maxBuffer: 64 << 20 })).stdout.trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (what: string, predicate: () => boolean | Promise<boolean>, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
};
const record = (n: number) => codec.encode({ id: `id-${n}`, event: 'e', payload: { n }, publishedAt: Date.now(), headers: {} });
const numberOf = (m: Parameters<typeof codec.decode>[0]) => (codec.decode(m).payload as { n: number }).n;
const sub = (t: RedisStreamTransport, topic: string, group: string, onMessage: (n: number) => void, startFrom: 'earliest' | 'latest' = 'earliest') =>
  t.subscribe({ group, topics: [topic], batchSize: 200, pollIntervalMs: 50, startFrom, consumerName: `${group}-c` }, async (batch) => {
    for (const m of batch) {
      onMessage(numberOf(m));
      m.ack();
    }
  });
const warnings: { message: string; fields: Record<string, unknown> }[] = [];
const logger: Logger = {
  debug() {},
  info() {},
  warn(message: string, fields?: Record<string, unknown>) {
    warnings.push({ message, fields: fields ?? {} });
  },
  error() {},
  child() {
    return logger;
  },
} as unknown as Logger;

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await deleteKeys([node], `${prefix}*`);
});

describe('safe retention (retention option: XTRIM MINID below what every group still needs)', () => {
  it('trims while a group is stopped with a long backlog: that group later gets every entry, pending ones included', async () => {
    const topic = `ret-${randomUUID().slice(0, 6)}`;
    const key = `${prefix}${topic}`;
    const total = 5000;
    const publisher = make();
    for (let i = 0; i < total; i += 500) {
      const results = await publisher.publish(
        topic,
        Array.from({ length: 500 }, (_, j) => record(i + j)),
      );
      expect(results.every((r) => r.ok)).toBe(true);
    }
    // The "slow" group: read 2,000, handled (acked) the first 1,000, then its member died → 1,000 pending.
    await cli('XGROUP', 'CREATE', key, 'slow', '0');
    const read = await cli('XREADGROUP', 'GROUP', 'slow', 'dead', 'COUNT', '2000', 'STREAMS', key, '>');
    const ids = read.split('\n').filter((line) => /^\d+-\d+$/.test(line));
    expect(ids.length).toBe(2000);
    await cli('XACK', key, 'slow', ...ids.slice(0, 1000));

    // A fast group with retention on handles everything; its passes must keep the slow group's backlog.
    const fast = make({ retention: { intervalMs: 20, exact: true }, claimIntervalMs: 50 });
    fast.attach?.({ logger, metrics: noopMetrics } as never);
    const fastSeen = new Set<number>();
    const fastSub = await sub(fast, topic, 'fast', (n) => fastSeen.add(n));
    await waitFor('the fast group to handle everything', () => fastSeen.size === total);
    // Trimmed exactly to the slow group's oldest pending entry (entry #1000), no further.
    await waitFor('the retention pass', async () => Number(await cli('XLEN', key)) === total - 1000);
    await sleep(300);
    expect(Number(await cli('XLEN', key))).toBe(total - 1000);
    expect((await cli('XRANGE', key, '-', '+', 'COUNT', '1')).split('\n')[0]).toBe(ids[1000]);
    await fastSub.close();

    // The slow group comes back: its 1,000 pending entries are reclaimed and the 3,000 undelivered read.
    const slow = make({ retention: { intervalMs: 20, exact: true }, claimIdleMs: 100, claimIntervalMs: 50 });
    const slowSeen = new Set<number>();
    const slowSub = await sub(slow, topic, 'slow', (n) => slowSeen.add(n));
    await waitFor('the slow group to catch up', () => slowSeen.size === total - 1000);
    for (let n = 1000; n < total; n++) expect(slowSeen.has(n)).toBe(true);
    // Now every group has had everything: the next passes trim the stream down to the last entry.
    await waitFor('the stream trimmed once both groups are done', async () => Number(await cli('XLEN', key)) <= 1);
    await slowSub.close();
    expect(fast.trimmedUnread + slow.trimmedUnread).toBe(0);
  }, 60_000);

  it('a stream without consumer groups is not trimmed', async () => {
    const topic = `ret-nogroup-${randomUUID().slice(0, 6)}`;
    const t = make({ retention: { intervalMs: 10 }, claimIntervalMs: 20 });
    await t.publish(topic, [record(1), record(2), record(3)]);
    // Our own group exists after subscribe; the other stream (no group) must stay untouched.
    const other = `${prefix}${topic}-other`;
    await cli('XADD', other, '*', 'a', '1');
    await cli('XADD', other, '*', 'a', '2');
    const seen: number[] = [];
    const s = await sub(t, topic, 'g', (n) => seen.push(n));
    await waitFor('delivery', () => seen.length === 3);
    await sleep(200);
    await s.close();
    expect(Number(await cli('XLEN', other))).toBe(2);
  });

  it('a hard cap (trim.maxLen) that trims what a stopped group has not had is counted and warned about', async () => {
    const topic = `ret-cap-${randomUUID().slice(0, 6)}`;
    const key = `${prefix}${topic}`;
    await cli('XGROUP', 'CREATE', key, 'stopped', '0', 'MKSTREAM');
    const capped = make({ trim: { maxLen: 100, exact: true } });
    for (let i = 0; i < 1000; i += 250) {
      await capped.publish(
        topic,
        Array.from({ length: 250 }, (_, j) => record(i + j)),
      );
    }
    expect(Number(await cli('XLEN', key))).toBe(100);
    const watcher = make({ retention: { intervalMs: 10 }, claimIntervalMs: 20 });
    watcher.attach?.({ logger, metrics: noopMetrics } as never);
    const seen: number[] = [];
    // From 'latest': a group created at 0 after the cap trimmed cannot be told from one that lost entries.
    const s = await sub(watcher, topic, 'watcher', (n) => seen.push(n), 'latest');
    await waitFor('the lost entries to be counted', () => watcher.trimmedUnread > 0);
    await sleep(200);
    await s.close();
    // The stopped group never got entries 0..899: 900 lost, counted once however many passes ran.
    expect(watcher.trimmedUnread).toBe(900);
    const warning = warnings.find((w) => w.fields.group === 'stopped' && w.fields.stream === key);
    expect(warning?.message).toMatch(/trimmed before a consumer group had them/);
    expect(warning?.fields.count).toBe(900);
  });
});
