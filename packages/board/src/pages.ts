import { DLQ_HEADER } from '@bus/core';
import { type DeadLetter, type StoredRecord, toDeadLetter } from './dead-letters.js';
import { type Html, html } from './html.js';
import type { Overview, TopicRow, WorkersRow } from './overview.js';

/** What every page knows about the request. */
export interface PageContext {
  /** Path prefix of the board, without trailing slash ('' at the root). */
  base: string;
  /** Actions are allowed for this request. */
  canWrite: boolean;
  /** A token is configured (a sign-in form is shown to those not signed in). */
  tokenLogin: boolean;
  /** Signed in with the token. */
  signedIn: boolean;
  /** The CSRF token every form posts. */
  csrf: string;
  title?: string;
}

/** `base + path?query`, leaving out undefined parameters. */
export function link(base: string, path: string, params: Record<string, string | number | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return `${base}${path}${s ? `?${s}` : ''}`;
}

const n = (v: number | undefined) => (v === undefined ? '–' : String(v));

function csrfField(ctx: PageContext): Html {
  return html`<input type="hidden" name="csrf" value="${ctx.csrf}">`;
}

function authBar(ctx: PageContext): Html {
  if (ctx.canWrite) {
    return html`<span class="badge ok" data-mode="write">actions enabled</span>${
      ctx.signedIn
        ? html`<form method="post" action="${link(ctx.base, '/logout')}" class="inline">${csrfField(ctx)}<button type="submit">Sign out</button></form>`
        : ''
    }`;
  }
  if (ctx.tokenLogin) {
    return html`<span class="badge" data-mode="read">read-only</span>
<form method="post" action="${link(ctx.base, '/login')}" class="inline login">${csrfField(ctx)}<label>Access token <input type="password" name="token" autocomplete="current-password" required></label><button type="submit">Sign in</button></form>`;
  }
  return html`<span class="badge" data-mode="read" title="Start the board with an access token or an authorize hook to replay and delete.">read-only</span>`;
}

/** The page frame: header, navigation, search box, content. */
export function layout(ctx: PageContext, content: Html, notice?: string): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${ctx.title ? `${ctx.title} · ` : ''}bus board</title>
<link rel="stylesheet" href="${link(ctx.base, '/assets/board.css')}">
<script src="${link(ctx.base, '/assets/board.js')}" defer></script>
</head>
<body>
<header>
<a class="brand" href="${link(ctx.base, '/')}">bus board</a>
<nav><a href="${link(ctx.base, '/')}">Overview</a></nav>
<form method="get" action="${link(ctx.base, '/find')}" class="inline find"><input type="search" name="q" placeholder="message id or position" aria-label="Find a message"><button type="submit">Find</button></form>
<div class="auth">${authBar(ctx)}</div>
</header>
<main>
${notice ? html`<p class="notice" role="status">${notice}</p>` : ''}
${content}
</main>
</body>
</html>`;
}

function deadLetterCell(ctx: PageContext, transport: string, row: TopicRow, key: string): Html {
  return html`<a href="${link(ctx.base, '/dead-letters', { t: transport, topic: row.deadLetterTopic })}" data-live="${key}.deadLetters">${n(row.deadLetters)}</a>`;
}

/** `2/2 alive, 2 ready, 0 restarts (pids 10, 11)`. */
export function workersText(w: WorkersRow): string {
  return `${w.alive}/${w.total} alive, ${w.ready} ready, ${w.restarts} restart(s)${w.pids.length ? ` (pid ${w.pids.join(', ')})` : ''}`;
}

/** Every module with its consumers, topics, lag, pending, dead letters and counts. */
export function overviewPage(ctx: PageContext, o: Overview): Html {
  const modules = o.modules.map((m, mi) => {
    const rows = m.consumers.flatMap((c, ci) =>
      c.topics.map((t, ti) => {
        const key = `${mi}.${ci}.${ti}`;
        return html`<tr>
<td>${ti === 0 ? c.consumer : ''}</td><td>${ti === 0 ? html`<code>${c.group}</code>` : ''}</td><td>${ti === 0 ? c.events.join(', ') : ''}</td>
<td><code>${t.topic}</code></td>
<td class="num" data-live="${key}.lag">${n(t.lag)}</td>
<td class="num" data-live="${key}.pending">${n(t.pending)}</td>
<td class="num">${deadLetterCell(ctx, m.transport, t, key)}</td>
<td class="num" data-live="${key}.handled">${n(t.handled)}</td>
<td class="num" data-live="${key}.failed">${n(t.failed)}</td>
<td class="error" data-live="${key}.error">${t.error ?? ''}</td>
</tr>`;
      }),
    );
    return html`<section class="module" data-module="${m.module}">
<h2>${m.module} <small>on <code>${m.transport}</code> (${m.kind})${m.processes && !m.workers ? `, ${m.processes} worker process(es) under bus run` : ''}</small></h2>
${m.workers ? html`<p class="workers">Worker processes: <span data-live="${mi}.workers">${workersText(m.workers)}</span></p>` : ''}
${m.error ? html`<p class="error">${m.error}</p>` : ''}
<table>
<thead><tr><th>Consumer</th><th>Group</th><th>Events</th><th>Topic</th><th class="num" title="not yet delivered to the group">Lag</th><th class="num" title="delivered, not acknowledged">Pending</th><th class="num" title="dead letters not replayed yet">Dead letters</th><th class="num" title="handler successes in this process">Handled</th><th class="num" title="failed attempts in this process">Failed</th><th></th></tr></thead>
<tbody>${rows}</tbody>
</table>
</section>`;
  });
  const transports = o.transports.map((t) => html`<tr><td><code>${t.name}</code></td><td>${t.kind}</td><td><code class="wrap">${t.options ?? '–'}</code></td></tr>`);
  return layout(
    { ...ctx, title: 'Overview' },
    html`<h1>Overview</h1>
<p class="muted">Updated <time data-live-at>${o.at}</time>${' '}<span class="live-state" data-live-state>(refreshes every 2 s with JavaScript on; reload otherwise)</span></p>
<div data-overview-api="${link(ctx.base, '/api/overview')}">${modules.length ? modules : html`<p>No modules.</p>`}</div>
<h2>Transports</h2>
<table><thead><tr><th>Name</th><th>Kind</th><th>Options (credentials redacted)</th></tr></thead><tbody>${transports}</tbody></table>`,
  );
}

/** Time, event, reason, error, attempts, group of each dead letter, with replay / delete. */
export function deadLettersPage(
  ctx: PageContext,
  p: {
    transport: string;
    topic: string;
    letters: DeadLetter[];
    total: number | undefined;
    next: string | undefined;
    limit: number;
    deleteUnavailable: string | undefined;
    error?: string;
  },
  notice?: string,
): Html {
  const rows = p.letters.map(
    (l) => html`<tr data-position="${l.position}">
${ctx.canWrite ? html`<td><input type="checkbox" name="pos" value="${l.position}" aria-label="select ${l.position}"></td>` : ''}
<td><a href="${link(ctx.base, '/message', { t: p.transport, topic: p.topic, pos: l.position })}"><code>${l.position}</code></a></td>
<td>${l.deadLetteredAt ?? '–'}</td><td>${l.event ?? '–'}</td><td class="reason">${l.reason ?? '–'}</td><td>${l.error ?? '–'}</td><td class="num">${n(l.attempts)}</td><td><code>${l.group ?? '–'}</code></td>
</tr>`,
  );
  const deleteNote = p.deleteUnavailable ? html`<p class="muted" data-delete-unavailable>Delete is unavailable: ${p.deleteUnavailable}</p>` : '';
  const actions = ctx.canWrite
    ? html`<div class="actions">
<button type="submit" name="action" value="replay">Replay selected</button>
${p.deleteUnavailable ? html`<button type="button" disabled title="${p.deleteUnavailable}">Delete selected</button>` : html`<button type="submit" name="action" value="delete" data-confirm="Delete the selected dead letters?">Delete selected</button>`}
</div>`
    : html`<p class="muted">Read-only: ${ctx.tokenLogin ? 'sign in with the access token' : 'start the board with an access token'} to replay or delete.</p>`;
  const table = html`<table class="letters">
<thead><tr>${ctx.canWrite ? html`<th><input type="checkbox" data-select-all aria-label="select all"></th>` : ''}<th>Position</th><th>Time</th><th>Event</th><th>Reason</th><th>Error</th><th class="num">Attempts</th><th>Group</th></tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="8">No dead letters.</td></tr>`}</tbody>
</table>`;
  return layout(
    { ...ctx, title: p.topic },
    html`<h1>Dead letters of <code>${p.topic}</code> <small>on <code>${p.transport}</code></small></h1>
<p class="muted">${p.total === undefined ? '' : `${p.total} record(s) in the topic. `}Newest first.</p>
${p.error ? html`<p class="error">${p.error}</p>` : ''}
${deleteNote}
${
  ctx.canWrite
    ? html`<form method="post" action="${link(ctx.base, '/actions')}" class="inline">${csrfField(ctx)}<input type="hidden" name="t" value="${p.transport}"><input type="hidden" name="topic" value="${p.topic}"><button type="submit" name="action" value="replay-all" data-confirm="Replay every dead letter not replayed yet?">Replay all not yet replayed</button></form>
<form method="post" action="${link(ctx.base, '/actions')}" id="selection">${csrfField(ctx)}<input type="hidden" name="t" value="${p.transport}"><input type="hidden" name="topic" value="${p.topic}">${actions}${table}</form>`
    : html`${actions}${table}`
}
<nav class="pager">${p.next ? html`<a rel="next" href="${link(ctx.base, '/dead-letters', { t: p.transport, topic: p.topic, cursor: p.next, limit: p.limit })}">Older →</a>` : ''}</nav>`,
    notice,
  );
}

/** Hex dump, 16 bytes a line, of at most 64 KiB. */
export function hexDump(bytes: Uint8Array): string {
  const max = Math.min(bytes.length, 65_536);
  const lines: string[] = [];
  for (let i = 0; i < max; i += 16) {
    const chunk = bytes.subarray(i, Math.min(i + 16, max));
    const hex = [...chunk].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...chunk].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (bytes.length > max) lines.push(`… ${bytes.length - max} more byte(s)`);
  return lines.join('\n');
}

/** The payload as pretty JSON, text, or (not UTF-8) a hex dump. */
export function payloadView(value: Uint8Array | string): { kind: 'json' | 'text' | 'binary'; text: string } {
  const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { kind: 'binary', text: hexDump(bytes) };
  }
  try {
    return { kind: 'json', text: JSON.stringify(JSON.parse(text), null, 2) };
  } catch {
    return { kind: 'text', text };
  }
}

/** One record: dead-letter facts, every header, the payload. */
export function messagePage(
  ctx: PageContext,
  p: { transport: string; topic: string; record: StoredRecord; deleteUnavailable: string | undefined },
  notice?: string,
): Html {
  const l = toDeadLetter(p.record);
  const isDeadLetter = p.record.headers[DLQ_HEADER.topic] !== undefined;
  const headers = Object.keys(p.record.headers)
    .sort()
    .map((name) => html`<tr><th><code>${name}</code></th><td><code class="wrap">${p.record.headers[name]}</code></td></tr>`);
  const view = payloadView(p.record.value);
  const size = typeof p.record.value === 'string' ? Buffer.byteLength(p.record.value) : p.record.value.byteLength;
  const hidden = html`${csrfField(ctx)}<input type="hidden" name="t" value="${p.transport}"><input type="hidden" name="topic" value="${p.topic}"><input type="hidden" name="pos" value="${l.position}">`;
  const actions =
    ctx.canWrite && isDeadLetter
      ? html`<form method="post" action="${link(ctx.base, '/actions')}" class="actions">${hidden}<button type="submit" name="action" value="replay">Replay</button>${
          p.deleteUnavailable
            ? html`<button type="button" disabled title="${p.deleteUnavailable}">Delete</button><span class="muted" data-delete-unavailable>${p.deleteUnavailable}</span>`
            : html`<button type="submit" name="action" value="delete" data-confirm="Delete this dead letter?">Delete</button>`
        }</form>`
      : '';
  return layout(
    { ...ctx, title: l.position },
    html`<h1><code>${p.topic}</code> @ <code>${l.position}</code></h1>
<p><a href="${link(ctx.base, '/dead-letters', { t: p.transport, topic: p.topic })}">← ${isDeadLetter ? 'dead letters' : 'topic'}</a></p>
${actions}
<table class="facts">
<tr><th>Event</th><td>${l.event ?? '–'}</td></tr>
<tr><th>Envelope id</th><td><code>${l.id ?? '–'}</code></td></tr>
<tr><th>Key</th><td><code>${l.key ?? '–'}</code></td></tr>
${
  isDeadLetter
    ? html`<tr><th>Origin</th><td><code>${l.origin ?? '–'}</code> @ <code>${l.originPosition ?? '–'}</code></td></tr>
<tr><th>Group</th><td><code>${l.group ?? '–'}</code></td></tr>
<tr><th>Dead-lettered at</th><td>${l.deadLetteredAt ?? '–'}</td></tr>
<tr><th>Attempts</th><td>${n(l.attempts)}</td></tr>
<tr><th>Error</th><td>${l.error ?? '–'}</td></tr>
<tr><th>Reason</th><td class="reason">${l.reason ?? '–'}</td></tr>`
    : ''
}
</table>
<h2>Headers</h2>
<table class="headers">${headers}</table>
<h2>Payload <small>${view.kind === 'binary' ? `${size} byte(s), not UTF-8: hex` : view.kind === 'json' ? `${size} byte(s), JSON` : `${size} byte(s), text`}</small></h2>
<pre class="payload" data-kind="${view.kind}">${view.text}</pre>`,
    notice,
  );
}

/** A hit of "find". */
export interface FindHit {
  transport: string;
  topic: string;
  deadLetter: boolean;
  position: string;
  event: string | undefined;
  id: string | undefined;
  /** The dead letter's origin position, for dead letters. */
  originPosition: string | undefined;
}

export function findPage(ctx: PageContext, q: string, hits: FindHit[], notes: string[]): Html {
  const rows = hits.map(
    (h) => html`<tr><td>${h.deadLetter ? 'dead letter' : 'message'}</td><td><code>${h.transport}</code></td><td><code>${h.topic}</code></td>
<td><a href="${link(ctx.base, '/message', { t: h.transport, topic: h.topic, pos: h.position })}"><code>${h.position}</code></a></td><td>${h.event ?? '–'}</td><td><code>${h.id ?? '–'}</code></td><td><code>${h.originPosition ?? ''}</code></td></tr>`,
  );
  return layout(
    { ...ctx, title: 'Find' },
    html`<h1>Find <code>${q}</code></h1>
<p class="muted">Looks for an envelope id (<code>ce_id</code>) or a broker position in every dead-letter topic, and in the modules' topics where the broker can look a record up.</p>
${notes.map((note) => html`<p class="muted">${note}</p>`)}
<table><thead><tr><th></th><th>Transport</th><th>Topic</th><th>Position</th><th>Event</th><th>Envelope id</th><th>Origin position</th></tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="7">Nothing found.</td></tr>`}</tbody></table>`,
  );
}

export function errorPage(ctx: PageContext, status: number, message: string): Html {
  return layout({ ...ctx, title: String(status) }, html`<h1>${status}</h1><p class="error">${message}</p>`);
}
