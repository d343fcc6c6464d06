import { HeaderStrings } from '@bus/core/kit';
import { describe, expect, it } from 'vitest';

const bytes = (text: string) => Buffer.from(text, 'utf8');

describe('HeaderStrings (kit): header bytes to strings, repeated values decoded once', () => {
  it('gives what Buffer#toString gives, for 20,000 random short values (repeats, other bytes of the same length, invalid UTF-8)', () => {
    const strings = new HeaderStrings();
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const alphabet = [0x41, 0x42, 0x61, 0x2e, 0x80, 0xc3, 0xa9, 0xff, 0xe2, 0x82, 0xac, 0x00];
    let previous: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 20_000; i++) {
      const name = `h${i % 3}`;
      let value: Buffer;
      const roll = random();
      if (roll < 0.4) value = Buffer.from(previous); // the same bytes again, in another buffer
      else if (roll < 0.6 && previous.length > 0) {
        value = Buffer.from(previous);
        value[Math.floor(random() * value.length)] = alphabet[Math.floor(random() * alphabet.length)] as number;
      } else {
        value = Buffer.from(Array.from({ length: Math.floor(random() * 8) }, () => alphabet[Math.floor(random() * alphabet.length)] as number));
      }
      expect(strings.value(name, value), `value ${value.toString('hex')}`).toBe(value.toString('utf8'));
      expect(strings.name(i % 5, value), `name ${value.toString('hex')}`).toBe(value.toString('utf8'));
      previous = value;
    }
  });

  it('returns the kept string for equal ASCII bytes, and decodes changed or non-ASCII bytes', () => {
    const strings = new HeaderStrings();
    const first = strings.value('ce_type', bytes('task.created'));
    expect(strings.value('ce_type', bytes('task.created'))).toBe(first);
    expect(strings.value('ce_type', bytes('task.createe'))).toBe('task.createe');
    expect(strings.value('ce_type', bytes('café'))).toBe('café');
    expect(strings.value('ce_type', bytes('cafée'))).toBe('cafée');
    expect(strings.value('bin', Buffer.from([0xff, 0x41]))).toBe('\ufffdA');
    expect(strings.value('bin', Buffer.from([0xfe, 0x41]))).toBe('\ufffdA');
    expect(strings.value('bin', Uint8Array.from([0x41, 0x42]))).toBe('AB');
  });

  it('keeps at most maxKeys names and values up to maxLength bytes; the rest is decoded every time', () => {
    const strings = new HeaderStrings(2, 4);
    for (let i = 0; i < 100; i++) expect(strings.value(`x-${i}`, bytes(`v${i}`))).toBe(`v${i}`);
    expect(strings.value('x-1', bytes('v1'))).toBe('v1');
    expect(strings.value('long', bytes('longer than four'))).toBe('longer than four');
    expect(strings.name(10, bytes('name'))).toBe('name');
  });
});
