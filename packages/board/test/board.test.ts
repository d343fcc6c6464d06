import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BoardOptions, countingMetrics, createBoard, escapeHtml } from '@bus/board';
import { ConfigError, createBus, DLQ_HEADER, memoryTransport, type Transport } from '@bus/core';
import { describe, expect, it } from 'vitest';
import { hexDump, payloadView } from '../src/pages.js';
import { XSS } from './helpers.js';

const TOKEN = 'a-long-enough-token';

function setup(options: Partial<BoardOptions> = {}) {
  const mem = memoryTransport();
  const bus = createBus({ transports: { mem } });
  const modules = [{ name: 'tasks', consumers: { work: { topics: ['jobs'], events: ['job.run'] } } }];
  const board = createBoard({ bus, modules, ...options });
  return { mem, bus, board };
}

/** A tiny cookie-keeping client of the fetch handler. */
function client(board: ReturnType<typeof createBoard>, origin = 'http://board.test') {
  let cookie = '';
  const call = async (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (cookie) headers.set('cookie', cookie);
    const res = await board.fetch(new Request(`${origin}${path}`, { ...init, headers, redirect: 'manual' }));
    const set = res.headers.get('set-cookie');
    if (set) cookie = set.split(';')[0] as string;
    return res;
  };
  const cookieNow = () => cookie;
  const setCookie = (value: string) => {
    cookie = value;
  };
  const csrf = async () => {
    const html = await (await call('/')).text();
    return /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  };
  const post = (path: string, form: Record<string, string | string[]>, headers: Record<string, string> = { origin }) => {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
    return call(path, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
  };
  return { call, csrf, post, cookieNow, setCookie };
}

async function deadLetter(mem: Transport, extra: Record<string, string> = {}) {
  const [r] = await mem.publish('jobs.dlq', [
    {
      value: JSON.stringify({ note: XSS }),
      headers: { ce_id: 'id-1', ce_type: 'job.run', [DLQ_HEADER.topic]: 'jobs', [DLQ_HEADER.reason]: XSS, [DLQ_HEADER.attempts]: '3', ...extra },
    },
  ]);
  return r?.ok ? r.id : '';
}

describe('createBoard', () => {
  it('validates its options with the key path', () => {
    const bus = createBus({ transports: { mem: memoryTransport() } });
    expect(() => createBoard({ bus, token: 'short' })).toThrow(ConfigError);
    expect(() => createBoard({ bus, token: 'short' })).toThrow(/\[board\] options\.token must have at least 12 characters, got \*\*\*/);
    expect(() => createBoard({ bus, basePath: 'board' })).toThrow(/options\.basePath must be a path starting with one "\/"/);
    expect(() => createBoard({ bus, basePath: '//evil.test' })).toThrow(/options\.basePath/);
    expect(() => createBoard({ bus: undefined as never })).toThrow(/options\.bus must be an object/);
  });

  it('escapes every value it renders', async () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&\``)).toBe('&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;');
    const { mem, board } = setup();
    const pos = await deadLetter(mem, { 'x-evil': XSS });
    const list = await (await board.fetch(new Request('http://b/dead-letters?t=mem&topic=jobs.dlq'))).text();
    const view = await (await board.fetch(new Request(`http://b/message?t=mem&topic=jobs.dlq&pos=${pos}`))).text();
    for (const html of [list, view]) {
      expect(html).not.toContain('<script>window');
      expect(html).not.toContain('<img src=x');
      expect(html).not.toContain('"onerror=');
      expect(html).toContain('&lt;script&gt;window.__xss=1&lt;/script&gt;');
    }
    // Script is served from the package only: CSP forbids inline script.
    const res = await board.fetch(new Request('http://b/'));
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const js = await board.fetch(new Request('http://b/assets/board.js'));
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(await js.text()).toContain('textContent');
  });

  it('never renders a transport credential', async () => {
    const mem = Object.assign(memoryTransport(), {
      options: { url: 'redis://user:hunter2-url@host:6379', sasl: { mechanism: 'plain', username: 'u', password: 'hunter2-sasl' }, brokers: ['b:9092'] },
    });
    const bus = createBus({ transports: { mem } });
    const board = createBoard({ bus, modules: [{ name: 'm', consumers: { c: { topics: ['t'], events: ['e'] } } }] });
    const html = await (await board.fetch(new Request('http://b/'))).text();
    const json = await (await board.fetch(new Request('http://b/api/overview'))).text();
    for (const text of [html, json]) {
      expect(text).not.toContain('hunter2');
      expect(text).toContain('b:9092');
    }
    expect(html).toContain('redis://user:***@host:6379');
  });

  it('is read-only without a token: no action buttons, POST refused', async () => {
    const { mem, board } = setup();
    await deadLetter(mem);
    const c = client(board);
    const csrf = await c.csrf();
    const page = await (await c.call('/dead-letters?t=mem&topic=jobs.dlq')).text();
    expect(page).not.toContain('value="replay"');
    expect(page).not.toContain('action="/login"');
    const res = await c.post('/actions', { csrf, t: 'mem', topic: 'jobs.dlq', action: 'replay-all' });
    expect(res.status).toBe(403);
  });

  it('acts only for a signed-in session, with the CSRF token, from the same origin', async () => {
    const { mem, board } = setup({ token: TOKEN });
    const pos = await deadLetter(mem);
    const c = client(board);
    const csrf = await c.csrf();
    const replay = { csrf, t: 'mem', topic: 'jobs.dlq', action: 'replay', pos };
    expect((await c.post('/actions', replay)).status).toBe(403); // not signed in
    expect((await c.post('/login', { csrf, token: 'wrong-token-123' })).headers.get('location')).toBe('/?notice=bad-token');
    expect((await c.post('/login', { csrf: 'forged', token: TOKEN })).status).toBe(403); // login CSRF
    const before = c.cookieNow();
    expect((await c.post('/login', { csrf: await c.csrf(), token: TOKEN })).status).toBe(303);
    // A new session on sign-in: the one from before (which another could have planted) has no rights.
    const after = c.cookieNow();
    expect(after).not.toBe(before);
    c.setCookie(before);
    expect((await c.post('/actions', replay)).status).toBe(403);
    c.setCookie(after);
    replay.csrf = await c.csrf();
    const csrf2 = replay.csrf;
    // Signed in, yet: no CSRF token, a forged one, another origin, a cross-site fetch.
    expect((await c.post('/actions', { ...replay, csrf: '' })).status).toBe(403);
    expect((await c.post('/actions', { ...replay, csrf: `${csrf.slice(0, -1)}x` })).status).toBe(403);
    expect((await c.post('/actions', replay, { origin: 'http://evil.test' })).status).toBe(403);
    expect((await c.post('/actions', replay, { origin: 'null' })).status).toBe(403);
    expect((await c.post('/actions', replay, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    // A GET never acts.
    expect((await c.call(`/actions?${new URLSearchParams(replay)}`)).status).toBe(404);

    const received: string[] = [];
    const sub = await mem.subscribe({ group: 'g', topics: ['jobs'], batchSize: 10, pollIntervalMs: 20, startFrom: 'earliest', consumerName: 'c' }, async (batch) => {
      for (const m of batch) {
        received.push(`${m.headers.ce_id} ${m.headers[DLQ_HEADER.reason] ?? 'no-dlq-headers'} ${m.headers['bus-replayed-at'] ? 'replayed' : ''}`);
        m.ack();
      }
    });
    const ok = await c.post('/actions', replay);
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/dead-letters?t=mem&topic=jobs.dlq&notice=replayed&n=1&skipped=0');
    for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await sub.close();
    expect(received).toEqual(['id-1 no-dlq-headers replayed']);
    // The memory transport cannot delete: refused with the reason.
    const del = await c.post('/actions', { ...replay, action: 'delete' });
    expect(del.status).toBe(409);
    expect((await c.post('/logout', { csrf: csrf2 })).status).toBe(303);
    expect((await c.post('/actions', replay)).status).toBe(403);
  });

  it('asks the authorize hook for read and write access', async () => {
    const { board } = setup({ authorize: (req, access) => (access === 'read' ? req.headers['x-user'] !== undefined : req.headers['x-user'] === 'admin') });
    expect((await board.fetch(new Request('http://b/'))).status).toBe(403);
    const admin = await (await board.fetch(new Request('http://b/', { headers: { 'x-user': 'admin' } }))).text();
    expect(admin).toContain('data-mode="write"');
    const viewer = await (await board.fetch(new Request('http://b/', { headers: { 'x-user': 'bob' } }))).text();
    expect(viewer).toContain('data-mode="read"');
  });

  it('serves node:http under a base path, passing other paths on', async () => {
    const { board } = setup({ basePath: '/board' });
    const server = createServer((req, res) =>
      board.handle(req, res, () => {
        res.statusCode = 418;
        res.end('not the board');
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const page = await fetch(`${url}/board/`);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain('href="/board/assets/board.css"');
      expect(page.headers.get('set-cookie')).toContain('Path=/board; HttpOnly; SameSite=Strict');
      expect((await fetch(`${url}/other`)).status).toBe(418);
      expect((await fetch(`${url}/board/nope`)).status).toBe(404);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('finds a dead letter by envelope id, position or origin position', async () => {
    const { mem, board } = setup();
    const pos = await deadLetter(mem, { [DLQ_HEADER.position]: '7-0' });
    for (const q of ['id-1', pos, '7-0']) {
      const html = await (await board.fetch(new Request(`http://b/find?q=${encodeURIComponent(q)}`))).text();
      expect(html).toContain(`/message?t=mem&amp;topic=jobs.dlq&amp;pos=${pos}`);
    }
    expect(await (await board.fetch(new Request('http://b/find?q=nothing-like-it'))).text()).toContain('Nothing found.');
  });
});

describe('createBoard, more', () => {
  it('answers only the allowed host names (DNS rebinding)', async () => {
    const { board } = setup({ allowedHosts: ['127.0.0.1', 'localhost', '::1'] });
    const status = async (host: string) => (await board.fetch(new Request('http://x/', { headers: { host } }))).status;
    expect(await status('127.0.0.1:7300')).toBe(200);
    expect(await status('localhost')).toBe(200);
    expect(await status('[::1]:7300')).toBe(200);
    expect(await status('evil.test:7300')).toBe(421);
    expect(await status('127.0.0.1.evil.test')).toBe(421);
  });

  it('replays all dead letters not replayed yet, once, like bus dlq replay', async () => {
    const { mem, board } = setup({ token: TOKEN });
    await deadLetter(mem);
    await deadLetter(mem, { ce_id: 'id-2' });
    const c = client(board);
    const csrf = await c.csrf();
    await c.post('/login', { csrf, token: TOKEN });
    const all = { csrf: await c.csrf(), t: 'mem', topic: 'jobs.dlq', action: 'replay-all' };
    expect((await c.post('/actions', all)).headers.get('location')).toContain('notice=replayed&n=2&skipped=0');
    const overview = (await (await c.call('/api/overview')).json()) as { modules: { consumers: { topics: { deadLetters: number }[] }[] }[] };
    expect(overview.modules[0]?.consumers[0]?.topics[0]?.deadLetters).toBe(0);
    expect((await c.post('/actions', all)).headers.get('location')).toContain('notice=replayed&n=0');
  });

  it('renders a page without reading it twice when asked at once', async () => {
    let reads = 0;
    const mem = memoryTransport();
    const lag = mem.lag?.bind(mem);
    const counted = Object.assign(mem, {
      lag: async (group: string, topics: readonly string[]) => {
        reads++;
        await new Promise((r) => setTimeout(r, 50));
        return (await lag?.(group, topics)) ?? [];
      },
    });
    const board = createBoard({ bus: createBus({ transports: { mem: counted } }), modules: [{ name: 'm', consumers: { c: { topics: ['t'], events: ['e'] } } }] });
    await Promise.all([1, 2, 3].map(() => board.fetch(new Request('http://b/api/overview'))));
    // One overview: the group's lag and the replay group's lag of the dead-letter topic.
    expect(reads).toBe(2);
  });
});

describe('payloadView', () => {
  it('pretty-prints JSON, keeps text, dumps bytes that are not UTF-8 as hex', () => {
    expect(payloadView('{"a":[1,2]}')).toEqual({ kind: 'json', text: '{\n  "a": [\n    1,\n    2\n  ]\n}' });
    expect(payloadView('plain')).toEqual({ kind: 'text', text: 'plain' });
    const binary = payloadView(new Uint8Array([0xff, 0x41, 0x00]));
    expect(binary.kind).toBe('binary');
    expect(binary.text).toBe(`00000000  ff 41 00${' '.repeat(39)}  .A.`);
    expect(hexDump(new Uint8Array(70_000)).split('\n').at(-1)).toBe('… 4464 more byte(s)');
  });
});

describe('countingMetrics', () => {
  it('counts handled, failed and dead-lettered per consumer and topic, forwarding every call', async () => {
    const forwarded: string[] = [];
    const inner = new Proxy({} as never, { get: (_t, name) => () => forwarded.push(String(name)) });
    const counters = countingMetrics(inner);
    const bus = createBus({ transports: { mem: memoryTransport() }, metrics: counters });
    bus.module({
      name: 'm',
      consumers: { c: { topics: ['t'], events: ['ok', 'bad'] } },
      retry: { attempts: 2, baseDelayMs: 1 },
      handler: (ctx) => {
        if (ctx.event === 'bad') throw new Error('bad');
      },
    });
    await bus.start();
    await bus.publish('t', 'ok', {});
    await bus.publish('t', 'bad', {});
    for (let i = 0; i < 100 && counters.counts('m', 'c', 't').deadLettered === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await bus.close();
    expect(counters.counts('m', 'c', 't')).toEqual({ handled: 1, failed: 2, deadLettered: 1 });
    expect(counters.counts('m', 'other', 't')).toEqual({ handled: 0, failed: 0, deadLettered: 0 });
    expect(forwarded).toEqual(expect.arrayContaining(['published', 'jobStarted', 'jobFinished', 'retried', 'deadLettered']));
  });
});
