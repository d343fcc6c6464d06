/**
 * Header names and values from bytes to strings (UTF-8), for transports whose client hands headers as
 * bytes.
 *
 * Most headers repeat from one record to the next (`ce_specversion`, `ce_type`, `ce_source`,
 * `content-type`, …; the names themselves, in the same order): the last value is kept per header name
 * (or per position, for names), and bytes equal to it give the same string back without decoding — a
 * loop over a few bytes instead of a call into the runtime's UTF-8 decoder. Only short ASCII values are
 * kept, for at most `maxKeys` names or positions, so hostile or unusual headers cost only the plain decode.
 */
export class HeaderStrings {
  private readonly byName = new Map<string, string>();
  private readonly byPosition: (string | undefined)[] = [];

  constructor(
    private readonly maxKeys = 64,
    private readonly maxLength = 64,
  ) {}

  /** The text of `bytes`, the value of header `name`. */
  value(name: string, bytes: Uint8Array): string {
    if (bytes.length > this.maxLength) return utf8(bytes);
    const last = this.byName.get(name);
    if (last !== undefined && sameAscii(bytes, last)) return last;
    const text = utf8(bytes);
    if (text.length === bytes.length && (last !== undefined || this.byName.size < this.maxKeys)) this.byName.set(name, text);
    return text;
  }

  /** The text of `bytes`, the name of the header at `position` in its record. */
  name(position: number, bytes: Uint8Array): string {
    if (bytes.length > this.maxLength || position >= this.maxKeys) return utf8(bytes);
    const last = this.byPosition[position];
    if (last !== undefined && sameAscii(bytes, last)) return last;
    const text = utf8(bytes);
    if (text.length === bytes.length) this.byPosition[position] = text;
    return text;
  }
}

function utf8(bytes: Uint8Array): string {
  return Buffer.isBuffer(bytes) ? bytes.toString('utf8') : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/**
 * Whether `bytes` are the kept string `text`. Only strings with as many chars as bytes are kept: ASCII,
 * or with a U+FFFD for an invalid byte, which no byte equals; so equal codes mean equal bytes.
 */
function sameAscii(bytes: Uint8Array, text: string): boolean {
  const length = bytes.length;
  if (text.length !== length) return false;
  for (let i = 0; i < length; i++) if (bytes[i] !== text.charCodeAt(i)) return false;
  return true;
}
