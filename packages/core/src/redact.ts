/** Option and field names whose values are secrets: never printed, logged or rendered. */
const SECRET_KEY = /pass(word)?|secret|token|sasl|credential|private|^key$|cert|^pfx$|^ca$|authorization/i;

/** The text with the password of every URL (`scheme://user:password@host`) replaced by `***`. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^/@\s:]*):([^/@\s]*)@/gi, '$1$2:***@');
}

/**
 * A copy of `value` safe to print: URL passwords masked, and the values of secret-looking keys
 * (`password`, `sasl`, `token`, `key`, `cert`, …) replaced by `***`, at any depth.
 */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactUrl(value);
  if (typeof value !== 'object' || value === null || depth > 6) return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error || Buffer.isBuffer(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) && v !== undefined ? '***' : redact(v, depth + 1);
  return out;
}

/** Whether an option key names a secret. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}
