import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The `bus` executable that worker processes run: `bin.js` next to this bundle (dist), or `bin.ts`
 * next to this file when running from source.
 */
export function defaultBin(): string {
  const dir = dirname(fileURLToPath(import.meta.url));
  for (const name of ['bin.js', 'bin.mjs', 'bin.ts']) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  return join(dir, 'bin.js');
}
