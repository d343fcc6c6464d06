import { BusError, type Logger, type LogFields, redactUrl, TimeoutError } from '@bus/core';
import { UsageError } from './usage.js';

/**
 * Exit codes of `bus`, documented in the README:
 * - `ok` 0: done (and `bus run` stopped by SIGTERM / SIGINT after draining);
 * - `error` 1: the command failed (invalid config, a broker refused the operation, a module could not start);
 * - `usage` 2: bad command line or missing config file;
 * - `unreachable` 3: a broker could not be reached, refused the credentials, or did not answer
 *   within `--timeout`;
 * - 128 + n (130 for SIGINT, 143 for SIGTERM): `bus run` forced to stop by a second signal.
 */
export const EXIT = { ok: 0, error: 1, usage: 2, unreachable: 3 } as const;

/** A command got no answer within its `--timeout`. `reported` holds what the transports logged meanwhile. */
export class CommandTimeoutError extends TimeoutError {
  constructor(
    command: string,
    readonly timeoutMs: number,
  ) {
    super(`[bus/cli] bus ${command} got no answer from the broker within ${timeoutMs} ms (--timeout)`);
    this.name = 'CommandTimeoutError';
  }
}

const UNREACHABLE_CODES = new Set(['CONNECTION', 'AUTH', 'POOL_TIMEOUT', 'TIMEOUT']);

/** The exit code for an error: see {@link EXIT}. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.usage;
  for (const e of chain(error)) if (BusError.isInstance(e) && UNREACHABLE_CODES.has(e.code)) return EXIT.unreachable;
  const text = chain(error)
    .map((e) => textOf(e))
    .join('\n');
  return UNREACHABLE.test(text) || AUTH.test(text) ? EXIT.unreachable : EXIT.error;
}

const AUTH = /WRONGPASS|NOAUTH|invalid (username-)?password|authentication failed|SASL|auth(entication)? (error|failed)|NOPERM|not authorized|AUTHORIZATION_FAILED|ACL/i;
const UNREACHABLE = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET|could not connect|Connection is closed|connection (timeout|timed out)|KafkaJSConnectionError|KafkaJSNumberOfRetriesExceeded|broker.*(not|un)available|pool .* exhausted/i;
const TLS = /certificate|self[- ]signed|CERT_|SSL|TLS|handshake/i;
const TOPIC = /UNKNOWN_TOPIC|unknown topic|does not exist|NOGROUP|no such key/i;

/** What to check, from the broker's words. The first match wins; at most two hints. */
function hintsFor(text: string): string[] {
  const hints: string[] = [];
  if (/NOAUTH|authentication required/i.test(text)) hints.push('the server requires a password: set it in the transport\'s options (e.g. redis://:<password>@host:6379 in REDIS_URL)');
  else if (/NOPERM|not authorized|AUTHORIZATION_FAILED|ACL/i.test(text)) hints.push('the user lacks a permission (ACL): check the user\'s rights on these keys / topics / groups');
  else if (AUTH.test(text)) hints.push('the broker refused the credentials: check the user name and password (or SASL settings) of the transport');
  if (TLS.test(text)) hints.push('TLS: check the CA certificate, the server name and whether the broker expects TLS on this port');
  if (!hints.length && UNREACHABLE.test(text)) {
    hints.push('check the host and port of the transport, that the broker is running, and that this machine can reach it (firewall, DNS, VPN)');
    if (/pool .* exhausted/i.test(text)) hints.push('no connection could be made in time: an unreachable host or refused credentials look the same from here');
  }
  if (!hints.length && TOPIC.test(text)) hints.push('check the topic (stream) and group names: they may not exist yet');
  if (!hints.length && /got no answer from the broker within/.test(text)) {
    hints.push('check the host and port of the transport, that the broker is running and reachable from here, and the credentials');
    hints.push('a slow broker may need a longer --timeout <ms>');
  }
  return hints.slice(0, 2);
}

/** An error and its causes (also the members of an AggregateError), outermost first, at most 6. */
function chain(error: unknown): unknown[] {
  const out: unknown[] = [];
  const seen = new Set<unknown>();
  const visit = (e: unknown) => {
    if (e === undefined || e === null || seen.has(e) || out.length >= 6) return;
    seen.add(e);
    out.push(e);
    if (e instanceof AggregateError) for (const member of e.errors) visit(member);
    if (e instanceof Error) visit(e.cause);
  };
  visit(error);
  return out;
}

function textOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const message = error.message || error.name;
  // Node's system errors (ECONNREFUSED…) and client errors carry a code their message may not repeat.
  return typeof code === 'string' && !message.includes(code) && !BusError.isInstance(error) ? `${message} (${code})` : message;
}

/**
 * The lines `bus` prints for a failure: the error, each cause not already part of the message above
 * it, what the transports reported meanwhile (for a timeout or a pool that never got a connection),
 * and what to check. Passwords in URLs are masked.
 */
export function explain(error: unknown, reported: readonly string[] = []): string {
  const lines: string[] = [];
  let above = '';
  for (const [i, e] of chain(error).entries()) {
    const text = redactUrl(textOf(e));
    if (i > 0 && above.includes(text)) continue;
    lines.push(i === 0 ? `bus: ${text}` : `  because: ${text}`);
    above += `\n${text}`;
  }
  const extra = [...new Set(reported.map(redactUrl))].filter((r) => !above.includes(r)).slice(-3);
  for (const r of extra) lines.push(`  reported: ${r}`);
  for (const hint of hintsFor(`${above}\n${extra.join('\n')}`)) lines.push(`  check: ${hint}`);
  return lines.join('\n');
}

/**
 * A logger that remembers the warnings and errors written through it (and its children), with the
 * error each carries, so a failure can say what the transports saw (e.g. the broker's refusal while
 * a pool kept retrying).
 */
export function recordingLogger(base: Logger, reported: string[] = []): { logger: Logger; reported: string[] } {
  const note = (msg: string, fields?: LogFields) => {
    const error = fields?.error;
    const detail = error instanceof Error ? textOf(error) : typeof error === 'string' ? error : undefined;
    reported.push(detail && !msg.includes(detail) ? `${msg}: ${detail}` : msg);
    if (reported.length > 20) reported.shift();
  };
  const wrap = (inner: Logger): Logger => ({
    debug: (msg, fields) => inner.debug(msg, fields),
    info: (msg, fields) => inner.info(msg, fields),
    warn: (msg, fields) => {
      note(msg, fields);
      inner.warn(msg, fields);
    },
    error: (msg, fields) => {
      note(msg, fields);
      inner.error(msg, fields);
    },
    child: (bindings) => wrap(inner.child(bindings)),
  });
  return { logger: wrap(base), reported };
}

/**
 * A deadline for a command: {@link Deadline.promise} rejects with a {@link CommandTimeoutError}
 * `timeoutMs` after the process started, or after the last {@link Deadline.touch} (progress, e.g. a
 * replayed message, pushes it back).
 */
export class Deadline {
  readonly promise: Promise<never>;
  private timer: NodeJS.Timeout | undefined;
  private fire: () => void = () => {};

  constructor(
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    this.promise = new Promise<never>((_, reject) => {
      this.fire = () => reject(new CommandTimeoutError(command, timeoutMs));
    });
    // Raced against the command; whoever loses must not be reported as unhandled.
    this.promise.catch(() => {});
    // The first period counts from the process's start: loading the config is part of the command.
    this.arm(Math.max(1000, timeoutMs - Math.round(process.uptime() * 1000)));
  }

  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(this.fire, ms);
  }

  /** Progress: the deadline starts again from now. */
  touch(): void {
    this.arm(this.timeoutMs);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}
