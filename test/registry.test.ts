import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '@bus/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readmeExamples } from './helpers/readme.js';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'bus-registry-'));
const copy = join(work, 'repo');
const PUBLISHED = ['core', 'redis-stream', 'kafka', 'prometheus', 'otel', 'cli', 'runtime', 'hyperf-compat', 'board', 'outbox-postgres'];
const bin = (name: string) => join(root, 'node_modules/.bin', name);

let registry: ChildProcess | undefined;
let registryUrl = '';
let env: NodeJS.ProcessEnv = {};

async function sh(cmd: string, args: string[], cwd: string, timeout = 120_000): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, { cwd, timeout, env, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

// A local npm registry (verdaccio 6) that stores @bus/* and proxies everything else to the npm registry.
beforeAll(async () => {
  const port = await freePort();
  registryUrl = `http://127.0.0.1:${port}/`;
  const upstream = (await exec('npm', ['config', 'get', 'registry'])).stdout.trim() || 'https://registry.npmjs.org/';
  writeFileSync(
    join(work, 'verdaccio.yaml'),
    [
      `storage: ${join(work, 'storage')}`,
      'uplinks:',
      `  upstream: { url: ${JSON.stringify(upstream)}, timeout: 60s }`,
      'packages:',
      "  '@bus/*': { access: $all, publish: $all, unpublish: $all }",
      "  '**': { access: $all, proxy: upstream }",
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  );
  const verdaccio = join(dirname(createRequire(join(root, 'package.json')).resolve('verdaccio/package.json')), 'bin/verdaccio');
  registry = spawn(process.execPath, [verdaccio, '--config', join(work, 'verdaccio.yaml'), '--listen', `127.0.0.1:${port}`], { stdio: 'ignore' });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await fetch(`${registryUrl}-/ping`).then((r) => r.ok, () => false);
    if (up) break;
    if (Date.now() > deadline) throw new Error('verdaccio did not answer within 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  // Every npm and pnpm call below talks to it, with a token it accepts (anyone may publish @bus/*).
  writeFileSync(join(work, '.npmrc'), `registry=${registryUrl}\n//127.0.0.1:${port}/:_authToken=local-test\n`);
  env = { ...process.env, npm_config_userconfig: join(work, '.npmrc'), npm_config_registry: registryUrl, CI: 'true' };
}, 60_000);

afterAll(() => {
  registry?.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
});

describe('a release published to a local registry (verdaccio), then installed with npm into a fresh project', () => {
  it('publishes 0.1.0 of every package with `changeset version` + `changeset publish`, never the private ones', async () => {
    // The repository as committed (plus the build), in a git repository of its own.
    const files = (await sh('git', ['ls-files', '-co', '--exclude-standard'], root)).split('\n').filter(Boolean);
    for (const f of files) {
      if (!existsSync(join(root, f))) continue;
      mkdirSync(dirname(join(copy, f)), { recursive: true });
      cpSync(join(root, f), join(copy, f));
    }
    for (const p of PUBLISHED) cpSync(join(root, 'packages', p, 'dist'), join(copy, 'packages', p, 'dist'), { recursive: true });
    await sh('git', ['init', '-q', '-b', 'main'], copy);
    await sh('git', ['add', '-A'], copy);
    await sh('git', ['-c', 'user.name=test', '-c', 'user.email=test@localhost', 'commit', '-qm', 'release'], copy);

    await sh(bin('changeset'), ['version'], copy);
    await sh('node', ['scripts/sync-versions.mjs'], copy);
    expect(readFileSync(join(copy, 'packages/otel/src/version.ts'), 'utf8')).toContain("export const VERSION = '0.1.0';");
    for (const p of PUBLISHED) {
      const file = join(copy, 'packages', p, 'package.json');
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      expect(pkg.version, p).toBe('0.1.0');
      expect(readFileSync(join(copy, 'packages', p, 'CHANGELOG.md'), 'utf8'), p).toMatch(new RegExp(`^# @bus/${p}\\n\\n## 0\\.1\\.0\\n`));
      // npm provenance needs the OIDC identity of a CI publisher; a local registry cannot have one.
      pkg.publishConfig.provenance = false;
      writeFileSync(file, JSON.stringify(pkg, null, 2));
    }
    for (const priv of ['bench', 'examples/live-tasks']) {
      expect(JSON.parse(readFileSync(join(copy, priv, 'package.json'), 'utf8')).version, priv).toBe('0.0.0');
      expect(existsSync(join(copy, priv, 'CHANGELOG.md')), priv).toBe(false);
    }
    await sh('git', ['-c', 'user.name=test', '-c', 'user.email=test@localhost', 'commit', '-qam', 'version'], copy);
    await sh(bin('changeset'), ['publish'], copy, 180_000);

    for (const p of PUBLISHED) {
      expect((await sh('npm', ['view', `@bus/${p}`, 'version'], work)).trim(), p).toBe('0.1.0');
    }
    const missing = await exec('npm', ['view', '@bus/bench', 'version'], { cwd: work, env }).then(
      () => false,
      () => true,
    );
    expect(missing, '@bus/bench must not be published').toBe(true);
  }, 300_000);

  it('installs into a fresh npm project with LICENSE and CHANGELOG inside, and runs as an ES module and as CommonJS', async () => {
    const app = join(work, 'app');
    mkdirSync(app, { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    await sh(
      'npm',
      ['install', '--no-audit', '--no-fund', ...PUBLISHED.map((p) => `@bus/${p}@0.1.0`), 'prom-client@^15.1.0', '@opentelemetry/api@~1.9.0', 'pg@^8'],
      app,
      240_000,
    );
    for (const p of PUBLISHED) {
      const dir = join(app, 'node_modules/@bus', p);
      expect(readdirSync(dir), p).toEqual(expect.arrayContaining(['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json', 'dist']));
      expect(readFileSync(join(dir, 'CHANGELOG.md'), 'utf8'), p).toContain('## 0.1.0');
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (p !== 'core') expect(pkg.dependencies['@bus/core'], p).toBe('^0.1.0');
      expect(pkg.engines?.node, `${p}: Node 20 is end of life`).toBe('>=22');
    }

    writeFileSync(
      join(app, 'app.mjs'),
      [
        "import { createBus, memoryTransport } from '@bus/core';",
        "import { redisStream } from '@bus/redis-stream';",
        "import { kafka } from '@bus/kafka';",
        "import { prometheus } from '@bus/prometheus';",
        "import { otel } from '@bus/otel';",
        "import { main } from '@bus/cli';",
        "for (const f of [redisStream, kafka, prometheus, otel, main]) if (typeof f !== 'function') throw new Error('missing export');",
        'const bus = createBus({ transports: { memory: memoryTransport() }, metrics: prometheus(), tracing: otel() });',
        "bus.module({ name: 'm', consumers: { c: { topics: ['t'], events: ['e'] } }, handler: ({ payload }) => console.log('esm', payload.n) });",
        'await bus.start();',
        "await bus.publish('t', 'e', { n: 1 });",
        'await bus.drained();',
        'await bus.close();',
        '',
      ].join('\n'),
    );
    expect(await sh('node', ['app.mjs'], app, 30_000)).toBe('esm 1\n');
    writeFileSync(join(app, 'script.cjs'), readmeExamples(join(root, 'README.md')).script?.code ?? '');
    expect(await sh('node', ['script.cjs'], app, 30_000)).toBe('income 30\n');
  }, 300_000);
});
