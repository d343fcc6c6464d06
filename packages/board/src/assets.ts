/**
 * The board's only script: live refresh of the overview (polls `/api/overview`, writes with
 * `textContent`, never HTML), "select all", and confirmations. Served from the package, same origin,
 * so the Content-Security-Policy allows no inline script at all.
 */
export const BOARD_JS = `(function () {
  'use strict';
  var root = document.querySelector('[data-overview-api]');
  if (root) {
    var api = root.getAttribute('data-overview-api');
    var state = document.querySelector('[data-live-state]');
    var at = document.querySelector('[data-live-at]');
    var set = function (key, value) {
      var el = document.querySelector('[data-live="' + key + '"]');
      if (!el) return;
      var text = value === undefined || value === null ? (key.slice(-6) === '.error' ? '' : '\\u2013') : String(value);
      if (el.textContent !== text) {
        el.textContent = text;
        el.classList.remove('changed');
        void el.offsetWidth;
        el.classList.add('changed');
      }
    };
    var tick = function () {
      fetch(api, { headers: { accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
        .then(function (o) {
          o.modules.forEach(function (m, mi) {
            if (m.workers) set(mi + '.workers', m.workers.alive + '/' + m.workers.total + ' alive, ' + m.workers.ready + ' ready, ' + m.workers.restarts + ' restart(s)' + (m.workers.pids.length ? ' (pid ' + m.workers.pids.join(', ') + ')' : ''));
            m.consumers.forEach(function (c, ci) {
              c.topics.forEach(function (t, ti) {
                var k = mi + '.' + ci + '.' + ti;
                set(k + '.lag', t.lag); set(k + '.pending', t.pending); set(k + '.deadLetters', t.deadLetters);
                set(k + '.handled', t.handled); set(k + '.failed', t.failed); set(k + '.error', t.error);
              });
            });
          });
          if (at) at.textContent = o.at;
          if (state) { state.textContent = '(live)'; state.className = 'live-state ok'; }
        })
        .catch(function (e) { if (state) { state.textContent = '(refresh failed: ' + e.message + ')'; state.className = 'live-state error'; } })
        .then(function () { setTimeout(tick, 2000); });
    };
    setTimeout(tick, 2000);
    if (state) state.textContent = '(live)';
  }
  document.addEventListener('change', function (e) {
    var all = e.target;
    if (!all.matches || !all.matches('[data-select-all]')) return;
    var boxes = all.form ? all.form.querySelectorAll('input[name="pos"]') : [];
    for (var i = 0; i < boxes.length; i++) boxes[i].checked = all.checked;
  });
  document.addEventListener('submit', function (e) {
    var button = e.submitter;
    var message = button && button.getAttribute('data-confirm');
    if (message && !window.confirm(message)) e.preventDefault();
  });
})();
`;

/** The board's stylesheet. */
export const BOARD_CSS = `:root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --line: #d0d5dd; --bg: #fff; --head: #f2f4f7; --accent: #1f6feb; --bad: #b42318; --good: #067647; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #98a2b3; --line: #344054; --bg: #0f1420; --head: #1a2130; --accent: #58a6ff; --bad: #f97066; --good: #47cd89; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 16px; align-items: center; flex-wrap: wrap; padding: 10px 20px; border-bottom: 1px solid var(--line); background: var(--head); }
header .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
header .auth { margin-left: auto; display: flex; gap: 8px; align-items: center; }
main { padding: 12px 20px 40px; max-width: 1400px; }
a { color: var(--accent); }
h1 code, h2 code { font-size: .85em; }
h1 { font-size: 20px; margin: 12px 0; } h2 { font-size: 16px; margin: 20px 0 8px; } small { color: var(--muted); font-weight: normal; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: var(--head); font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, monospace; } .wrap { white-space: pre-wrap; word-break: break-all; }
.muted { color: var(--muted); } .error { color: var(--bad); } .ok { color: var(--good); }
.badge { border: 1px solid var(--line); border-radius: 10px; padding: 1px 8px; font-size: 12px; } .badge.ok { border-color: var(--good); }
.inline { display: inline-flex; gap: 6px; align-items: center; margin: 0; }
.actions { display: flex; gap: 8px; align-items: center; margin: 8px 0; }
button { font: inherit; padding: 3px 10px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); cursor: pointer; }
button:disabled { opacity: .5; cursor: not-allowed; }
input[type=search], input[type=password] { font: inherit; padding: 3px 6px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
.notice { padding: 8px 12px; border: 1px solid var(--good); border-radius: 6px; }
pre.payload { padding: 10px; border: 1px solid var(--line); border-radius: 6px; background: var(--head); overflow: auto; max-height: 60vh; white-space: pre-wrap; word-break: break-all; }
td.reason { max-width: 420px; word-break: break-word; }
.changed { animation: flash 1.2s ease-out; }
@keyframes flash { from { background: rgba(255, 200, 0, .45); } to { background: transparent; } }
`;
