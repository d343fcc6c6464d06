import { randomFillSync } from 'node:crypto';

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const POOL_SIZE = 16 * 256;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;
let lastMs = -1;
let sequence = 0;

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit sequence that keeps ids created in
 * the same millisecond by this process strictly increasing, then 62 random bits. Ids sort by creation
 * time as strings and as bytes.
 */
export function uuidv7(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    sequence = 0;
  } else {
    // Clock went back or same millisecond: keep ids increasing by borrowing the next millisecond when
    // the 12-bit sequence runs out.
    sequence++;
    if (sequence > 0xfff) {
      lastMs++;
      sequence = 0;
    }
  }
  if (poolOffset + 8 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const r = pool.subarray(poolOffset, poolOffset + 8);
  poolOffset += 8;
  const ms = lastMs;
  const b = new Array<string>(16);
  b[0] = HEX[Math.floor(ms / 2 ** 40) & 0xff] as string;
  b[1] = HEX[Math.floor(ms / 2 ** 32) & 0xff] as string;
  b[2] = HEX[(ms >>> 24) & 0xff] as string;
  b[3] = HEX[(ms >>> 16) & 0xff] as string;
  b[4] = HEX[(ms >>> 8) & 0xff] as string;
  b[5] = HEX[ms & 0xff] as string;
  b[6] = HEX[0x70 | (sequence >>> 8)] as string;
  b[7] = HEX[sequence & 0xff] as string;
  b[8] = HEX[0x80 | ((r[0] as number) & 0x3f)] as string;
  for (let i = 1; i < 8; i++) b[8 + i] = HEX[r[i] as number] as string;
  return `${b[0]}${b[1]}${b[2]}${b[3]}-${b[4]}${b[5]}-${b[6]}${b[7]}-${b[8]}${b[9]}-${b[10]}${b[11]}${b[12]}${b[13]}${b[14]}${b[15]}`;
}
