import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const packageDir = new URL('..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'bus-pack-'));

afterAll(() => rmSync(work, { recursive: true, force: true }));

// What users install: the tarball `pnpm pack` makes from the build, in a project of its own.
describe('the packed @bus/core tarball', () => {
  it('installs, and works through ESM import and CJS require', () => {
    expect(existsSync(join(packageDir, 'dist/index.js')), 'build @bus/core first (pnpm build)').toBe(true);
    execFileSync('pnpm', ['pack', '--pack-destination', work], { cwd: packageDir, stdio: 'pipe' });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const app = join(work, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, tarball as string)], { cwd: app, stdio: 'pipe' });

    const script = (load: string) => `
      ${load}
      const bus = core.createBus({ transports: { memory: core.memoryTransport() } });
      let got;
      bus.module({ name: 'm', pollIntervalMs: 10, consumers: { c: { topics: ['t'], events: ['e'] } }, handler: (ctx) => { got = ctx.payload; } });
      await bus.start();
      await bus.publish('t', 'e', { ok: 1 });
      for (let i = 0; i < 200 && !got; i++) await new Promise((r) => setTimeout(r, 5));
      await bus.close();
      if (typeof testing.runTransportConformance !== 'function') throw new Error('no conformance suite');
      console.log(JSON.stringify({ got, error: core.BusError.isInstance(new core.ConfigError('a', 'b', 1)) }));
    `;
    const esm = execFileSync('node', ['--input-type=module', '-e', script("import * as core from '@bus/core'; import * as testing from '@bus/core/testing';")], { cwd: app }).toString();
    const cjs = execFileSync('node', ['-e', `(async () => { ${script("const core = require('@bus/core'); const testing = require('@bus/core/testing');")} })().catch((e) => { console.error(e); process.exit(1); });`], { cwd: app }).toString();
    expect(JSON.parse(esm)).toEqual({ got: { ok: 1 }, error: true });
    expect(JSON.parse(cjs)).toEqual({ got: { ok: 1 }, error: true });
  }, 120_000);
});
