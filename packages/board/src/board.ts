import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage as NodeRequest, ServerResponse } from 'node:http';
import { OptionReader, type Transport } from '@bus/core';
import type { WorkerInfo } from '@bus/runtime';
import { BOARD_CSS, BOARD_JS } from './assets.js';
import type { CountsSource } from './counters.js';
import { publishReplays, replayDeadLetters, type StoredRecord, toDeadLetter } from './dead-letters.js';
import type { Html } from './html.js';
import { type BoardModule, errorText, type Overview, readOverview } from './overview.js';
import { deadLettersPage, errorPage, type FindHit, findPage, link, messagePage, overviewPage, type PageContext } from './pages.js';
import { type DeadLetterStore, defaultDeadLetterStore, isRedisTransport, redisDeadLetters } from './stores.js';

/** What the board shows: a `Bus` from `@bus/core` fits (its transports and default transport). */
export interface BoardSource {
  readonly transports: Readonly<Record<string, Transport>>;
  readonly defaultTransport: string;
}

/** A request as the board's hooks see it. */
export interface BoardRequest {
  method: string;
  url: URL;
  /** Lower-case header names. */
  headers: Readonly<Record<string, string | undefined>>;
  /** The framework's own request object: a Node `IncomingMessage` or a fetch `Request`. */
  raw: unknown;
}

/** What a request wants: to look, or to change something (replay, delete). */
export type BoardAccess = 'read' | 'write';

export interface BoardOptions {
  /** The bus (or its transports) to show. */
  bus: BoardSource;
  /** Its modules (a config file's `modules`, or the definitions given to `bus.module`). @default [] */
  modules?: readonly BoardModule[];
  /**
   * Handled and failed counts: a `countingMetrics()` passed to the bus as its `metrics` too, or,
   * in the `bus run` parent, `workerCounts(supervisor)` (the workers' counts, summed).
   * @default undefined (counts shown as –)
   */
  counters?: CountsSource;
  /**
   * Access token that enables actions: whoever signs in with it (a form on every page; a session
   * cookie follows) may replay and delete. At least 12 characters. Without a token and without
   * {@link BoardOptions.authorize} the board is read-only.
   * @default undefined
   */
  token?: string;
  /**
   * Decides access per request, e.g. from a header your reverse proxy sets. Returning `false` for
   * `read` answers 403; `true` for `write` enables actions (CSRF protection still applies).
   * @default undefined (reading allowed; writing only with the token)
   */
  authorize?: (request: BoardRequest, access: BoardAccess) => boolean | Promise<boolean>;
  /** Path prefix where the board is mounted (e.g. `/board`); links and the cookie use it. @default '' */
  basePath?: string;
  /** The dead-letter store of a transport. @default redisDeadLetters on Redis, scanDeadLetters elsewhere */
  deadLetters?: (transport: Transport, name: string) => DeadLetterStore;
  /** Dead letters per page. @default 50 */
  pageSize?: number;
  /**
   * The worker slots of `bus run`, for "worker processes alive" per module: pass
   * `() => supervisor.workers()` when the board runs in the config's `supervisor` hook.
   * @default undefined (not shown)
   */
  workers?: () => readonly WorkerInfo[];
  /**
   * Host names (of the `Host` header) the board answers; others get 421. Guards a board on a
   * loopback address against DNS rebinding (a page of another site reading it through a name that
   * resolves to 127.0.0.1). `bus board` sets it to the loopback names when it listens on loopback.
   * @default undefined (any host)
   */
  allowedHosts?: readonly string[];
}

/** A mounted board: a Node handler, a fetch handler, and `close`. */
export interface Board {
  /**
   * Node `http` handler: `http.createServer(board.handle)`, or in Express/Connect
   * `app.use('/board', board.handle)` (with `basePath: '/board'`). With `next`, a path outside the
   * board's is passed on.
   */
  handle(req: NodeRequest, res: ServerResponse, next?: (error?: unknown) => void): void;
  /** Fetch-style handler (Hono, Bun, Deno, Workers-style servers): `Request → Response`. */
  fetch(request: Request): Promise<Response>;
  /** Forgets sessions. Does not close the bus. */
  close(): void;
}

interface Req {
  method: string;
  url: URL;
  headers: Record<string, string | undefined>;
  body: () => Promise<string>;
  raw: unknown;
}

interface Res {
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
}

const COOKIE = 'bus_board_sid';
const MAX_BODY = 64 * 1024;
const MAX_SESSIONS = 10_000;

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

/**
 * Creates the web board of a bus. Nothing connects here: each page reads lag with `transport.lag()`
 * and dead letters with the transport's {@link DeadLetterStore} when it is requested.
 *
 * Safe by default: read-only unless a `token` or an `authorize` hook is given; actions are POST
 * forms carrying a per-session CSRF token (an HMAC of the session cookie), and a POST whose
 * `Origin` (or `Sec-Fetch-Site`) says another site is refused; every value is HTML-escaped and the
 * Content-Security-Policy allows no inline script; transport options are shown through `redact`.
 *
 * @throws {ConfigError} `[board] options.token must …` for a bad option
 */
export function createBoard(options: BoardOptions): Board {
  const r = new OptionReader('board', 'options');
  r.closed(r.object('<root>', options), ['bus', 'modules', 'counters', 'token', 'authorize', 'basePath', 'deadLetters', 'pageSize', 'workers', 'allowedHosts']);
  const source = r.object('bus', options.bus) as unknown as BoardSource;
  r.object('bus.transports', source.transports);
  const modules = options.modules ?? [];
  if (!Array.isArray(modules)) r.fail('modules', 'must be an array', modules);
  const token = options.token === undefined ? undefined : r.string('token', options.token);
  if (token !== undefined && token.length < 12) r.fail('token', 'must have at least 12 characters', token);
  if (options.authorize !== undefined && typeof options.authorize !== 'function') r.fail('authorize', 'must be a function', options.authorize);
  if (options.workers !== undefined && typeof options.workers !== 'function') r.fail('workers', 'must be a function', options.workers);
  const base = (options.basePath === undefined ? '' : r.string('basePath', options.basePath)).replace(/\/+$/, '');
  if (base && (!base.startsWith('/') || base.startsWith('//') || /[\s"'<>?#\\]/.test(base))) r.fail('basePath', 'must be a path starting with one "/"', base);
  const pageSize = r.int('pageSize', options.pageSize, 50, 1, 1000);
  if (options.allowedHosts !== undefined && (!Array.isArray(options.allowedHosts) || options.allowedHosts.some((h) => typeof h !== 'string'))) {
    r.fail('allowedHosts', 'must be an array of host names', options.allowedHosts);
  }
  const allowedHosts = options.allowedHosts && new Set(options.allowedHosts.map((h) => h.toLowerCase().replace(/^\[|\]$/g, '')));
  const tokenDigest = token === undefined ? undefined : createHash('sha256').update(token).digest();
  const secret = randomBytes(32);
  const signedIn = new Set<string>();
  const stores = new Map<string, DeadLetterStore>();

  const storeOf = (name: string): { transport: Transport; store: DeadLetterStore } => {
    const transport = source.transports[name];
    if (!transport) throw new HttpError(404, `no transport "${name}"`);
    let store = stores.get(name);
    if (!store) {
      store = options.deadLetters?.(transport, name) ?? defaultDeadLetterStore(transport);
      stores.set(name, store);
    }
    return { transport, store };
  };

  const sessionOf = (req: Req): { sid: string; fresh: boolean } => {
    const sid = cookies(req.headers.cookie)[COOKIE];
    if (sid && /^[A-Za-z0-9_-]{32}$/.test(sid)) return { sid, fresh: false };
    return { sid: newSessionId(), fresh: true };
  };
  const newSessionId = () => randomBytes(24).toString('base64url');
  const sessionCookie = (sid: string, req: Req) => `${COOKIE}=${sid}; Path=${base || '/'}; HttpOnly; SameSite=Strict${req.url.protocol === 'https:' ? '; Secure' : ''}`;
  const csrfOf = (sid: string) => createHmac('sha256', secret).update(sid).digest('base64url');

  const hookRequest = (req: Req): BoardRequest => ({ method: req.method, url: req.url, headers: req.headers, raw: req.raw });

  // One overview read at a time, shared by every page and poll that asks meanwhile.
  let overviewRead: Promise<Overview> | undefined;
  const overview = (): Promise<Overview> => {
    overviewRead ??= readOverview(source.transports, source.defaultTransport, modules, options.counters, options.workers).finally(() => {
      overviewRead = undefined;
    });
    return overviewRead;
  };

  async function route(req: Req): Promise<Res> {
    if (allowedHosts && !allowedHosts.has(hostName(req.headers.host))) return text(421, 'unknown host name');
    const path = req.url.pathname.slice(base.length) || '/';
    if (req.method === 'GET' && path === '/assets/board.js') return asset(BOARD_JS, 'text/javascript; charset=utf-8');
    if (req.method === 'GET' && path === '/assets/board.css') return asset(BOARD_CSS, 'text/css; charset=utf-8');
    if (options.authorize && !(await options.authorize(hookRequest(req), 'read'))) return text(403, 'forbidden');
    const { sid, fresh } = sessionOf(req);
    const canWrite = (tokenDigest !== undefined && signedIn.has(sid)) || (options.authorize !== undefined && (await options.authorize(hookRequest(req), 'write')));
    const ctx: PageContext = { base, canWrite, tokenLogin: tokenDigest !== undefined, signedIn: signedIn.has(sid), csrf: csrfOf(sid) };
    const withCookie = (res: Res): Res => {
      if (fresh && res.headers['set-cookie'] === undefined) res.headers['set-cookie'] = sessionCookie(sid, req);
      return res;
    };
    try {
      if (req.method === 'POST') return withCookie(await post(req, path, sid, ctx));
      if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed', { allow: 'GET, HEAD, POST' });
      return withCookie(await get(req, path, ctx));
    } catch (error) {
      if (error instanceof HttpError) return page(error.status, errorPage(ctx, error.status, error.message));
      return page(500, errorPage(ctx, 500, errorText(error)));
    }
  }

  async function get(req: Req, path: string, ctx: PageContext): Promise<Res> {
    const q = req.url.searchParams;
    const notice = noticeText(q);
    switch (path) {
      case '/':
        return page(200, overviewPage(ctx, await overview()));
      case '/api/overview':
        return json(await overview());
      case '/dead-letters': {
        const name = required(q, 't');
        const topic = required(q, 'topic');
        const { store } = storeOf(name);
        const limit = Math.min(Math.max(Number(q.get('limit')) || pageSize, 1), 1000);
        let error: string | undefined;
        let result: Awaited<ReturnType<DeadLetterStore['page']>> = { records: [], total: undefined, next: undefined };
        try {
          result = await store.page(topic, { cursor: q.get('cursor') ?? undefined, limit });
        } catch (e) {
          error = errorText(e);
        }
        return page(
          200,
          deadLettersPage(
            ctx,
            { transport: name, topic, letters: result.records.map(toDeadLetter), total: result.total, next: result.next, limit, deleteUnavailable: store.deleteUnavailable, ...(error ? { error } : {}) },
            notice,
          ),
        );
      }
      case '/message': {
        const name = required(q, 't');
        const topic = required(q, 'topic');
        const pos = required(q, 'pos');
        const { store } = storeOf(name);
        const [record] = await store.get(topic, [pos]);
        if (!record) throw new HttpError(404, `no record at ${pos} in "${topic}" (replayed and deleted, or trimmed?)`);
        return page(200, messagePage(ctx, { transport: name, topic, record, deleteUnavailable: store.deleteUnavailable }, notice));
      }
      case '/find': {
        const needle = (q.get('q') ?? '').trim().slice(0, 200);
        const { hits, notes } = needle ? await find(needle) : { hits: [], notes: [] };
        return page(200, findPage(ctx, needle, hits, notes));
      }
      default:
        throw new HttpError(404, `no page ${path}`);
    }
  }

  async function post(req: Req, path: string, sid: string, ctx: PageContext): Promise<Res> {
    // Cross-site requests never act, whatever cookies they carry.
    const origin = req.headers.origin;
    const host = req.headers.host;
    if (origin !== undefined && origin !== 'null' && (host === undefined || hostOf(origin) !== host)) throw new HttpError(403, 'cross-origin request refused');
    if (origin === 'null') throw new HttpError(403, 'cross-origin request refused');
    if (req.headers['sec-fetch-site'] === 'cross-site') throw new HttpError(403, 'cross-site request refused');
    const form = new URLSearchParams(await req.body());
    const csrf = form.get('csrf') ?? req.headers['x-bus-board-csrf'] ?? '';
    if (!safeEqual(csrf, csrfOf(sid))) throw new HttpError(403, 'missing or stale form token: reload the page and try again');
    if (path === '/login') {
      const given = createHash('sha256')
        .update(form.get('token') ?? '')
        .digest();
      if (!tokenDigest || !timingSafeEqual(given, tokenDigest)) return redirect(link(base, '/', { notice: 'bad-token' }));
      // A new session id on sign-in: a session id planted before (session fixation) never gains rights.
      const fresh = newSessionId();
      if (signedIn.size >= MAX_SESSIONS) signedIn.delete(signedIn.values().next().value as string);
      signedIn.add(fresh);
      const res = redirect(back(req) ?? link(base, '/'));
      res.headers['set-cookie'] = sessionCookie(fresh, req);
      return res;
    }
    if (path === '/logout') {
      signedIn.delete(sid);
      return redirect(link(base, '/'));
    }
    if (path !== '/actions') throw new HttpError(404, `no action ${path}`);
    if (!ctx.canWrite) throw new HttpError(403, 'read-only: sign in with the access token to act');
    const name = required(form, 't');
    const topic = required(form, 'topic');
    const action = form.get('action');
    const positions = form.getAll('pos').slice(0, 1000);
    const { transport, store } = storeOf(name);
    const here = (params: Record<string, string | number>) => redirect(link(base, '/dead-letters', { t: name, topic, ...params }));
    switch (action) {
      case 'replay': {
        if (positions.length === 0) return here({ notice: 'none-selected' });
        const records = await store.get(topic, positions);
        const result = await publishReplays(transport, records);
        return here({ notice: 'replayed', n: result.replayed, skipped: result.skipped });
      }
      case 'replay-all': {
        const result = await replayDeadLetters(transport, topic, Number.MAX_SAFE_INTEGER, () => {}, 5000);
        return here({ notice: 'replayed', n: result.replayed, skipped: result.skipped });
      }
      case 'delete': {
        if (store.deleteUnavailable) throw new HttpError(409, `delete is unavailable: ${store.deleteUnavailable}`);
        if (positions.length === 0) return here({ notice: 'none-selected' });
        const count = await store.delete(topic, positions);
        return here({ notice: 'deleted', n: count });
      }
      default:
        throw new HttpError(400, 'unknown action');
    }
  }

  /** Dead letters (and, on Redis, messages) whose envelope id or position is `needle`. */
  async function find(needle: string): Promise<{ hits: FindHit[]; notes: string[] }> {
    const hits: FindHit[] = [];
    const notes: string[] = [];
    const seen = new Set<string>();
    const topics: { transport: string; topic: string; deadLetter: boolean }[] = [];
    for (const m of modules) {
      const name = m.transport ?? source.defaultTransport;
      let consumers: Awaited<ReturnType<Extract<BoardModule['consumers'], () => unknown>>>;
      try {
        consumers = typeof m.consumers === 'function' ? await m.consumers() : m.consumers;
      } catch {
        continue;
      }
      for (const decl of Object.values(consumers)) {
        for (const topic of decl.topics) {
          const dlq = m.deadLetterTopic ? m.deadLetterTopic(topic) : `${topic.endsWith('.dlq') ? topic : `${topic}.dlq`}`;
          for (const t of [
            { transport: name, topic, deadLetter: false },
            { transport: name, topic: dlq, deadLetter: true },
          ]) {
            const key = `${t.transport}\u0000${t.topic}`;
            if (!seen.has(key)) {
              seen.add(key);
              topics.push(t);
            }
          }
        }
      }
    }
    const skipped = new Set<string>();
    await Promise.all(
      topics.map(async (t) => {
        const transport = source.transports[t.transport];
        if (!transport) return;
        let records: StoredRecord[];
        try {
          if (t.deadLetter) records = await storeOf(t.transport).store.scan(t.topic, 1000);
          else if (isRedisTransport(transport)) {
            const redis = redisDeadLetters(transport);
            records = [...(await redis.get(t.topic, [needle])), ...(await redis.scan(t.topic, 1000))];
          } else {
            skipped.add(t.transport);
            return;
          }
        } catch (error) {
          if (t.deadLetter) notes.push(`${t.topic}: ${errorText(error)}`);
          return;
        }
        const matched = new Set<string>();
        for (const rec of records) {
          const l = toDeadLetter(rec);
          if (matched.has(rec.id)) continue;
          if (rec.id === needle || l.id === needle || (t.deadLetter && l.originPosition === needle)) {
            matched.add(rec.id);
            hits.push({ transport: t.transport, topic: t.topic, deadLetter: t.deadLetter, position: rec.id, event: l.event, id: l.id, originPosition: t.deadLetter ? l.originPosition : undefined });
          }
        }
      }),
    );
    for (const name of skipped) notes.push(`Topics of "${name}" are searched in their dead letters only (its broker cannot look a record up without reading the topic).`);
    notes.push('Searched: the newest 1000 records of each Redis stream; the first 1000 records of other dead-letter topics.');
    return { hits, notes };
  }

  const handle = (req: Req): Promise<Res> =>
    route(req).catch((error) => text(error instanceof HttpError ? error.status : 500, error instanceof HttpError ? error.message : errorText(error)));

  return {
    handle(nodeReq, nodeRes, next) {
      const host = nodeReq.headers.host ?? 'localhost';
      const proto = (nodeReq.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
      let url: URL;
      try {
        url = new URL(nodeReq.originalUrl ?? nodeReq.url ?? '/', `${proto}://${host}`);
      } catch {
        url = new URL('http://localhost/');
      }
      if (next && base && !url.pathname.startsWith(base)) {
        next();
        return;
      }
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(nodeReq.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const body = () => readNodeBody(nodeReq);
      handle({ method: nodeReq.method ?? 'GET', url, headers, body, raw: nodeReq }).then(
        (res) => {
          nodeRes.writeHead(res.status, res.headers);
          nodeRes.end(nodeReq.method === 'HEAD' ? undefined : res.body);
        },
        (error) => {
          if (next) next(error);
          else {
            nodeRes.statusCode = 500;
            nodeRes.end();
          }
        },
      );
    },
    async fetch(request) {
      const url = new URL(request.url);
      const headers: Record<string, string | undefined> = {};
      request.headers.forEach((v, k) => {
        headers[k] = v;
      });
      headers.host ??= url.host;
      const body = async () => {
        const text = await request.text();
        if (text.length > MAX_BODY) throw new HttpError(413, 'request body too large');
        return text;
      };
      const res = await handle({ method: request.method, url, headers, body, raw: request });
      const out = new Headers();
      for (const [k, v] of Object.entries(res.headers)) for (const one of Array.isArray(v) ? v : [v]) out.append(k, one);
      return new Response(request.method === 'HEAD' ? null : res.body, { status: res.status, headers: out });
    },
    close() {
      signedIn.clear();
    },
  };
}

declare module 'node:http' {
  interface IncomingMessage {
    /** Set by Express when the board is mounted under a path. */
    originalUrl?: string;
  }
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function required(params: URLSearchParams, name: string): string {
  const value = params.get(name);
  if (!value) throw new HttpError(400, `missing parameter "${name}"`);
  return value;
}

const NOTICES: Record<string, (q: URLSearchParams) => string> = {
  replayed: (q) => `Replayed ${Number(q.get('n')) || 0} dead letter(s)${Number(q.get('skipped')) ? `; skipped ${Number(q.get('skipped'))} without a bus-dlq-topic header` : ''}.`,
  deleted: (q) => `Deleted ${Number(q.get('n')) || 0} dead letter(s).`,
  'none-selected': () => 'Select at least one dead letter.',
  'bad-token': () => 'Wrong access token.',
};

function noticeText(q: URLSearchParams): string | undefined {
  const kind = q.get('notice');
  return kind ? NOTICES[kind]?.(q) : undefined;
}

function cookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** The host name of a `Host` header, lower case, without port or IPv6 brackets. */
function hostName(host: string | undefined): string {
  if (!host) return '';
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return colon > 0 ? h.slice(0, colon) : h;
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The same-origin page the form was posted from, to go back to after signing in. */
function back(req: Req): string | undefined {
  const referer = req.headers.referer;
  if (!referer) return undefined;
  try {
    const url = new URL(referer);
    return url.host === req.headers.host ? `${url.pathname}${url.search}` : undefined;
  } catch {
    return undefined;
  }
}

function page(status: number, body: Html): Res {
  return { status, headers: { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS }, body: body.text };
}

function json(value: unknown): Res {
  return { status: 200, headers: { 'content-type': 'application/json; charset=utf-8', ...SECURITY_HEADERS }, body: JSON.stringify(value) };
}

function text(status: number, message: string, extra: Record<string, string> = {}): Res {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS, ...extra }, body: message };
}

function redirect(location: string): Res {
  return { status: 303, headers: { location, ...SECURITY_HEADERS }, body: '' };
}

function asset(body: string, type: string): Res {
  return { status: 200, headers: { 'content-type': type, 'cache-control': 'public, max-age=300', 'x-content-type-options': 'nosniff' }, body };
}

function readNodeBody(req: NodeRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
