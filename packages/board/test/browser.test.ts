import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { type Board, countingMetrics, createBoard } from '@bus/board';
import { type Bus, createBus, DLQ_HEADER, type EventMap, type Transport } from '@bus/core';
import { kafka } from '@bus/kafka';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium, serve, XSS } from './helpers.js';

const run = randomUUID().slice(0, 8);
const TOKEN = `board-token-${run}`;
let browser: Browser;
const redisKeys: string[] = [];

beforeAll(async () => {
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  if (redisKeys.length) {
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    await redis.del(...redisKeys);
    redis.disconnect();
  }
});

type Events = { 'job.created': { n: number; note?: string } };

const transports: Record<'redis' | 'kafka', () => Transport> = {
  redis: () => redisStream({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }),
  kafka: () => kafka({ brokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','), clientId: `board-${run}` }),
};

/** Polls `read` until `check` holds, bounded. */
async function until<T>(what: string, read: () => Promise<T>, check: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const started = Date.now();
  let last: T | undefined;
  while (Date.now() - started < timeoutMs) {
    last = await read();
    if (check(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

describe.each(['redis', 'kafka'] as const)('the board in chromium on %s', (kind) => {
  const topic = `board-${kind}-${run}`;
  const dlq = `${topic}.dlq`;
  const module = `board${kind}${run}`;
  if (kind === 'redis') redisKeys.push(topic, dlq);
  const counters = countingMetrics();
  let failing = true;
  const handled: number[] = [];
  let bus: Bus<EventMap>;
  let board: Board;
  let server: Awaited<ReturnType<typeof serve>>;
  let page: Page;
  const xssSeen: string[] = [];
  const lag = () => page.locator('[data-live="0.0.0.lag"]').textContent();
  const deadLetters = () => page.locator('[data-live="0.0.0.deadLetters"]').textContent();
  const handledCell = () => page.locator('[data-live="0.0.0.handled"]').textContent();

  beforeAll(async () => {
    bus = createBus<Events>({ transports: { [kind]: transports[kind]() }, metrics: counters }) as unknown as Bus<EventMap>;
    const modules = [
      {
        name: module,
        consumers: { jobs: { topics: [topic], events: ['job.created'] } },
        retry: { attempts: 1 },
        pollIntervalMs: 200,
        startFrom: 'earliest' as const,
        handler: async (ctx: { payload: { n: number } }) => {
          if (failing && ctx.payload.n === 2) throw new Error(`cannot handle ${XSS}`);
          handled.push(ctx.payload.n);
        },
      },
    ];
    for (const m of modules) bus.module(m as never);
    board = createBoard({ bus, modules, counters, token: TOKEN });
    server = await serve(board);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.on('dialog', (dialog) => {
      // Only the board's own "delete?" confirmation may open a dialog; an alert would be injected script.
      if (dialog.type() !== 'confirm') xssSeen.push(`${dialog.type()}: ${dialog.message()}`);
      void dialog.accept();
    });
  });

  afterAll(async () => {
    await page?.context().close();
    await server?.close();
    board?.close();
    await bus?.close();
  });

  it('shows lag growing live as messages are published, then draining when the module runs', async () => {
    await page.goto(`${server.url}/`);
    await expect(page.locator(`[data-module="${module}"] h2`)).toBeDefined();
    expect(await page.locator(`[data-module="${module}"] h2`).textContent()).toContain(module);
    const before = await lag();
    // Published while the page is open: the cell changes without a reload.
    for (let n = 1; n <= 3; n++) await bus.publish(topic, 'job.created', { n });
    await until('lag 3 on the page', lag, (t) => t === '3');
    expect(before).not.toBe('3');
    await page.screenshot({ path: join(ARTIFACTS, `overview-lag-${kind}.png`), fullPage: true });

    await bus.start();
    await until('lag 0', lag, (t) => t === '0', 45_000);
    await until('one dead letter', deadLetters, (t) => t === '1', 30_000);
    await until('two handled', handledCell, (t) => t === '2');
    expect(handled.sort()).toEqual([1, 3]);
    await page.screenshot({ path: join(ARTIFACTS, `overview-${kind}.png`), fullPage: true });
  });

  it('lists the dead letter with its payload and headers escaped: nothing injected runs', async () => {
    // A second one written straight into the dead-letter topic: script in headers, bytes that are not UTF-8.
    const [sent] = await bus.transports[kind]?.publish(dlq, [
      {
        value: Buffer.from([0xff, 0xfe, 0x3c, 0x73, 0x63, 0x72, 0x69, 0x70, 0x74, 0x3e, 0x00]),
        headers: {
          [DLQ_HEADER.reason]: XSS,
          [DLQ_HEADER.error]: '"><script>window.__xss=5</script>',
          [DLQ_HEADER.topic]: topic,
          [DLQ_HEADER.group]: `${module}-jobs`,
          [DLQ_HEADER.attempts]: '1',
          'x-evil': XSS,
        },
      },
    ]) ?? [];
    expect(sent?.ok).toBe(true);
    const binaryPosition = sent?.ok ? sent.id : '';

    await page.locator('[data-live="0.0.0.deadLetters"]').click();
    await page.waitForSelector('table.letters');
    expect(await page.locator('table.letters tbody tr').count()).toBe(2);
    // The script text is shown as text.
    expect(await page.locator('table.letters').textContent()).toContain('<script>window.__xss=1</script>');
    expect(await page.locator('table.letters img, table.letters svg, main script').count()).toBe(0);

    await page.locator(`tr[data-position="${binaryPosition}"] a`).click();
    await page.waitForSelector('pre.payload');
    expect(await page.locator('pre.payload').getAttribute('data-kind')).toBe('binary');
    expect(await page.locator('pre.payload').textContent()).toContain('ff fe 3c 73 63 72 69 70');
    expect(await page.locator('table.headers').textContent()).toContain(XSS);
    expect(await page.locator('main img, main svg, main script').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, `message-binary-${kind}.png`), fullPage: true });

    await page.goBack();
    await page.locator('table.letters tbody tr').filter({ hasText: 'job.created' }).locator('a').click();
    await page.waitForSelector('pre.payload');
    expect(await page.locator('pre.payload').getAttribute('data-kind')).toBe('json');
    expect(await page.locator('pre.payload').textContent()).toBe(JSON.stringify({ n: 2 }, null, 2));
    expect(await page.locator('.reason').textContent()).toContain(XSS);

    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    expect(xssSeen).toEqual([]);

    // Find it by its envelope id, from the search box.
    const envelopeId = (await page.locator('table.facts tr', { hasText: 'Envelope id' }).locator('td').textContent()) as string;
    expect(envelopeId).toMatch(/^[0-9a-f-]{36}$/);
    await page.locator('input[name="q"]').fill(envelopeId);
    await page.locator('form.find button').click();
    await page.waitForSelector('h1:has-text("Find")');
    const hits = page.locator('main table tbody tr');
    // The dead letter, and on Redis the original message in the module's stream too.
    expect(await hits.filter({ hasText: 'dead letter' }).count()).toBe(1);
    expect(await hits.filter({ hasText: 'message' }).count()).toBe(kind === 'redis' ? 1 : 0);
    expect(await hits.filter({ hasText: 'dead letter' }).locator('a').getAttribute('href')).toContain(`topic=${encodeURIComponent(dlq)}`);
  });

  it('reads with JavaScript off: the overview and the dead letters are server-rendered', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const plain = await context.newPage();
      await plain.goto(`${server.url}/`);
      expect(await plain.locator('[data-live="0.0.0.lag"]').textContent()).toBe('0');
      expect(await plain.locator('[data-live="0.0.0.deadLetters"]').textContent()).toBe('2');
      await plain.locator('[data-live="0.0.0.deadLetters"]').click();
      await plain.waitForSelector('table.letters');
      expect(await plain.locator('table.letters tbody tr').count()).toBe(2);
    } finally {
      await context.close();
    }
  });

  it('replays a dead letter with a click once signed in, and the module handles it', async () => {
    // Read-only until signed in: no action buttons.
    await page.goto(`${server.url}/dead-letters?t=${kind}&topic=${encodeURIComponent(dlq)}`);
    expect(await page.locator('button[value="replay"]').count()).toBe(0);
    await page.locator('input[name="token"]').fill(TOKEN);
    await page.locator('form.login button').click();
    await page.waitForSelector('[data-mode="write"]');

    failing = false;
    const row = page.locator('table.letters tbody tr').filter({ hasText: 'job.created' });
    await row.locator('input[name="pos"]').check();
    await page.locator('button[value="replay"]').click();
    await page.waitForSelector('.notice');
    expect(await page.locator('.notice').textContent()).toContain('Replayed 1 dead letter(s)');
    await until('the replayed message handled', async () => handled.length, (n) => n === 3, 30_000);
    expect(handled).toContain(2);

    await page.goto(`${server.url}/`);
    await until('three handled on the page', handledCell, (t) => t === '3');
    await page.screenshot({ path: join(ARTIFACTS, `overview-after-replay-${kind}.png`), fullPage: true });
  });

  it(kind === 'redis' ? 'deletes the selected dead letters' : 'shows why delete is unavailable', async () => {
    await page.goto(`${server.url}/dead-letters?t=${kind}&topic=${encodeURIComponent(dlq)}`);
    await page.waitForSelector('table.letters');
    if (kind === 'kafka') {
      expect(await page.locator('[data-delete-unavailable]').textContent()).toContain('Kafka cannot delete single records');
      expect(await page.locator('button:has-text("Delete selected")').isDisabled()).toBe(true);
      expect(await page.locator('button[value="delete"]').count()).toBe(0);
    } else {
      await page.locator('[data-select-all]').check();
      await page.locator('button[value="delete"]').click();
      await page.waitForSelector('.notice');
      expect(await page.locator('.notice').textContent()).toContain('Deleted 2 dead letter(s)');
      expect(await page.locator('table.letters tbody').textContent()).toContain('No dead letters.');
    }
    await page.screenshot({ path: join(ARTIFACTS, `dead-letters-${kind}.png`), fullPage: true });
  });
});
