import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onTransport, readmeExamples } from './helpers/readme.js';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'bus-pack-'));
const tarballs = join(work, 'tarballs');
const app = join(work, 'app');

/** Every published package: its folder and one export each entry point must have. */
const PACKAGES = {
  core: { name: '@bus/core', exports: ['createBus', 'memoryTransport', 'BusError'] },
  'redis-stream': { name: '@bus/redis-stream', exports: ['redisStream'] },
  kafka: { name: '@bus/kafka', exports: ['kafka'] },
  prometheus: { name: '@bus/prometheus', exports: ['prometheus'] },
  otel: { name: '@bus/otel', exports: ['otel'] },
  cli: { name: '@bus/cli', exports: ['main', 'defineConfig'] },
  runtime: { name: '@bus/runtime', exports: ['supervise', 'runWorker', 'defineConfig'] },
  'hyperf-compat': { name: '@bus/hyperf-compat', exports: ['hyperfMessagebusCodec', 'phpSerialize'] },
  board: { name: '@bus/board', exports: ['createBoard'] },
  'outbox-postgres': { name: '@bus/outbox-postgres', exports: ['pgOutbox', 'migrate'] },
} as const;
type Dir = keyof typeof PACKAGES;
const dirs = Object.keys(PACKAGES) as Dir[];
const tarballOf: Partial<Record<Dir, string>> = {};

const examples = readmeExamples(join(root, 'README.md'));

async function sh(cmd: string, args: string[], cwd: string, timeout = 120_000): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, { cwd, timeout, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

beforeAll(async () => {
  mkdirSync(tarballs, { recursive: true });
  for (const dir of dirs) {
    const packageDir = join(root, 'packages', dir);
    expect(existsSync(join(packageDir, 'dist/index.js')), `build ${PACKAGES[dir].name} first (pnpm build)`).toBe(true);
    const before = new Set(readdirSync(tarballs));
    await sh('pnpm', ['pack', '--pack-destination', tarballs], packageDir);
    tarballOf[dir] = join(tarballs, readdirSync(tarballs).find((f) => !before.has(f)) as string);
  }
}, 180_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.each(dirs)('the %s tarball', (dir) => {
  it('carries LICENSE, CHANGELOG.md, a README with absolute links, and the links and settings npm shows', async () => {
    const files = (await sh('tar', ['-tzf', tarballOf[dir] as string], work)).split('\n');
    for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json', 'dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts']) {
      expect(files, f).toContain(`package/${f}`);
    }
    const pkg = JSON.parse(await sh('tar', ['-xzOf', tarballOf[dir] as string, 'package/package.json'], work));
    expect(pkg.license).toBe('MIT');
    expect(pkg.repository).toEqual({ type: 'git', url: 'git+https://github.com/bus-js/bus.git', directory: `packages/${dir}` });
    expect(pkg.homepage).toBe(`https://github.com/bus-js/bus/tree/main/packages/${dir}#readme`);
    expect(pkg.bugs).toEqual({ url: 'https://github.com/bus-js/bus/issues' });
    expect(pkg.keywords.length).toBeGreaterThan(2);
    expect(pkg.publishConfig).toEqual({ access: 'public', provenance: true });
    expect(JSON.stringify(pkg)).not.toContain('workspace:');
    const license = await sh('tar', ['-xzOf', tarballOf[dir] as string, 'package/LICENSE'], work);
    expect(license).toMatch(/^MIT License/);
    const readme = await sh('tar', ['-xzOf', tarballOf[dir] as string, 'package/README.md'], work);
    // Relative links are dead on npmjs.com.
    expect(readme.match(/\]\((?!https?:\/\/|#)[^)]*\)/g) ?? []).toEqual([]);
    expect(readme).not.toMatch(/pnpm add |yarn add /);
  });
});

describe('the tarballs installed with npm into a fresh project (no "type" field, as npm init makes it)', () => {
  beforeAll(async () => {
    mkdirSync(app, { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const tgz = dirs.map((d) => tarballOf[d] as string);
    await sh(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tgz, 'prom-client@^15.1.0', '@opentelemetry/api@~1.9.0', 'pg@^8', 'typescript@~5.9.3', '@types/node@^20.19.0'],
      app,
      300_000,
    );
  }, 320_000);

  it('each package loads through ESM import and CJS require', async () => {
    for (const dir of dirs) {
      const { name, exports } = PACKAGES[dir];
      const check = `for (const k of ${JSON.stringify(exports)}) if (m[k] === undefined) throw new Error('${name} has no ' + k);`;
      await sh('node', ['--input-type=module', '-e', `import * as m from '${name}'; ${check}`], app);
      await sh('node', ['-e', `const m = require('${name}'); ${check}`], app);
    }
    await sh('node', ['--input-type=module', '-e', "import { runTransportConformance } from '@bus/core/testing'; if (typeof runTransportConformance !== 'function') process.exit(1);"], app);
    await sh('node', ['-e', "if (typeof require('@bus/core/testing').runTransportConformance !== 'function') process.exit(1);"], app);
    expect(await sh(join(app, 'node_modules/.bin/bus'), ['--help'], app)).toMatch(/^bus — run and inspect a bus/);
  }, 120_000);

  it("the README's examples type-check under moduleResolution node16, bundler and node10, and run: the ESM service and the CJS script", async () => {
    const src = join(app, 'src');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'service.mts'), examples.service?.code ?? '');
    writeFileSync(join(src, 'service-redis.mts'), onTransport(examples.service?.code ?? '', 'redis', 'live', 'esm'));
    writeFileSync(join(src, 'service-kafka.mts'), onTransport(examples.service?.code ?? '', 'kafka', 'live', 'esm'));
    writeFileSync(
      join(src, 'all.mts'),
      [
        "import { createBus, type Transport } from '@bus/core';",
        "import { runTransportConformance, freePort } from '@bus/core/testing';",
        "import { redisStream } from '@bus/redis-stream';",
        "import { kafka } from '@bus/kafka';",
        "import { prometheus } from '@bus/prometheus';",
        "import { otel } from '@bus/otel';",
        "import { defineConfig } from '@bus/cli';",
        'const t: Transport = redisStream({});',
        "export const x = [createBus, runTransportConformance, freePort, kafka, prometheus, otel, defineConfig, t] as const;",
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(src, 'legacy.ts'),
      "import { createBus, memoryTransport } from '@bus/core';\nimport { runTransportConformance } from '@bus/core/testing';\nexport const x = [createBus({ transports: { m: memoryTransport() } }), runTransportConformance];\n",
    );
    // The README's config file, next to the events module it imports.
    writeFileSync(join(app, 'bus.config.ts'), examples.config?.code ?? '');
    writeFileSync(
      join(src, 'events.ts'),
      "export type LiveEvents = {\n  'anchor.income': { anchorId: string; amount: number };\n  'live.duration': { anchorId: string; minutes: number };\n};\n",
    );
    const base = { strict: true, skipLibCheck: false, types: ['node'], target: 'ES2022', lib: ['ES2023'] };
    const tsconfigs = {
      'tsconfig.node16.json': { compilerOptions: { ...base, module: 'node16', moduleResolution: 'node16', rootDir: '.', outDir: 'out' }, files: ['src/service.mts', 'src/service-redis.mts', 'src/service-kafka.mts', 'src/all.mts', 'bus.config.ts'] },
      'tsconfig.bundler.json': { compilerOptions: { ...base, module: 'esnext', moduleResolution: 'bundler', noEmit: true }, files: ['src/service.mts', 'src/all.mts', 'bus.config.ts'] },
      'tsconfig.node10.json': { compilerOptions: { ...base, module: 'commonjs', moduleResolution: 'node10', noEmit: true, ignoreDeprecations: '5.0' }, files: ['src/legacy.ts'] },
    };
    const tsc = join(app, 'node_modules/.bin/tsc');
    for (const [file, config] of Object.entries(tsconfigs)) {
      writeFileSync(join(app, file), JSON.stringify(config));
      await sh(tsc, ['-p', file], app);
    }

    // The compiled service (an ES module: .mjs) handles what it published; Ctrl-C stops it with exit code 0.
    const service = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(app, 'out/src/service.mjs')], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk;
        if (/income 30 \S+\n/.test(stdout)) child.kill('SIGINT');
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk;
      });
      child.on('exit', (code) => {
        clearTimeout(killer);
        resolve({ code, stdout, stderr });
      });
    });
    expect(service.stdout, service.stderr).toMatch(/daily-live-60min-100yuan income 30 [0-9a-f-]{36}\n/);
    expect(service.code, service.stderr).toBe(0);

    writeFileSync(join(app, 'script.cjs'), examples.script?.code ?? '');
    expect(await sh('node', ['script.cjs'], app, 30_000)).toBe('income 30\n');
  }, 180_000);
});
