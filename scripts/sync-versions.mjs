// After `changeset version`: writes each package's new version into the source files that report it
// (today @bus/otel's tracer scope version), so the build and package.json agree. `pnpm version-packages`
// runs both; a test in @bus/otel fails when they differ.
import { readFileSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const targets = [{ pkg: 'packages/otel/package.json', file: 'packages/otel/src/version.ts' }];
for (const { pkg, file } of targets) {
  const { version } = JSON.parse(readFileSync(new URL(pkg, root), 'utf8'));
  const path = new URL(file, root);
  const before = readFileSync(path, 'utf8');
  const after = before.replace(/export const VERSION = '[^']*';/, `export const VERSION = '${version}';`);
  if (!after.includes(`'${version}'`)) throw new Error(`${file}: no "export const VERSION = '…';" line`);
  if (after !== before) writeFileSync(path, after);
  console.log(`${file}: ${version}`);
}
