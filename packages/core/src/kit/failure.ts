/**
 * Reading a client library's error: the errors it wraps (`cause`, and the `errors` of an
 * AggregateError) and the TLS failure among them. Client libraries wrap the reason a connection failed
 * several levels deep; transports type their errors from it.
 */

/** `error`, then every error it wraps (`cause`, aggregated `errors`), breadth first, each once; at most 50. */
export function* errorChain(error: unknown): Generator<Error & { code?: unknown }> {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0 && seen.size < 50) {
    const e = queue.shift();
    if (!(e instanceof Error) || seen.has(e)) continue;
    seen.add(e);
    yield e;
    const inner = (e as { errors?: unknown }).errors;
    if (Array.isArray(inner)) queue.push(...inner);
    const cause = (e as { cause?: unknown }).cause;
    if (cause !== undefined) queue.push(cause);
  }
}

/** Node's codes of a failed certificate check or TLS handshake (`tls.connect` errors). */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/;
const TLS_MESSAGE = /certificate|SSL routines|wrong version number|TLS handshake/i;

/**
 * The TLS failure `error` (or one it wraps) reports — a certificate the trusted CAs do not sign, a name
 * that does not match, a server that does not speak TLS — as `message (CODE)`; `undefined` when none.
 * Such a failure comes again on every retry: transports report it as a non-retryable `ConnectionError`.
 */
export function tlsFailure(error: unknown): string | undefined {
  for (const e of errorChain(error)) {
    const code = String(e.code ?? '');
    if (TLS_CODE.test(code)) return `${e.message} (${code})`;
    if (TLS_MESSAGE.test(e.message)) return e.message;
  }
  return undefined;
}
