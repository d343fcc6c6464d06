import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { KAFKA_BROKERS, onTransport, REDIS_URL, readmeExamples, type TransportName } from './helpers/readme.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// Inside the repository, so that `@bus/*` and tsx resolve from its node_modules (the built packages).
const work = join(root, '.cache', `readme-${process.pid}`);
mkdirSync(work, { recursive: true });
afterAll(() => rmSync(work, { recursive: true, force: true }));

const examples = readmeExamples(join(root, 'README.md'));
const run = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node args`; once `until` matches stdout, sends SIGINT (Ctrl-C). Killed after `timeoutMs`. */
function runNode(args: string[], options: { until?: RegExp; timeoutMs: number }): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      if (options.until && !interrupted && options.until.test(stdout)) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe("the README's examples, as written", () => {
  it('are there', () => {
    expect(examples.service?.lang).toBe('ts');
    expect(examples.script?.lang).toBe('js');
    expect(examples.service?.code).toContain('closeOnSignals(bus)');
    expect(examples.script?.code).toContain('await bus.drained()');
  });

  describe.each<TransportName>(['memory', 'redis', 'kafka'])('on %s', (transport) => {
    it('the service handles what it published, and Ctrl-C stops it with exit code 0', async () => {
      const file = join(work, `service-${transport}.mts`);
      writeFileSync(file, onTransport(examples.service?.code ?? '', transport, `readme-svc-${transport}-${run}`, 'esm'));
      const out = await runNode(['--import', 'tsx', file], { until: /daily-live-60min-100yuan income 30 \S+/, timeoutMs: 60_000 });
      expect(out.stdout, out.stderr).toMatch(/running; press Ctrl-C to stop/);
      expect(out.stdout, out.stderr).toMatch(/daily-live-60min-100yuan income 30 [0-9a-f-]{36}\n/);
      expect({ code: out.code, signal: out.signal }, out.stderr).toEqual({ code: 0, signal: null });
    }, 90_000);

    it('the CommonJS script prints what it handled before it exits, thanks to bus.drained()', async () => {
      const file = join(work, `script-${transport}.cjs`);
      writeFileSync(file, onTransport(examples.script?.code ?? '', transport, `readme-script-${transport}-${run}`, 'cjs'));
      const out = await runNode([file], { timeoutMs: 60_000 });
      expect({ code: out.code, stdout: out.stdout }, out.stderr).toEqual({ code: 0, stdout: 'income 30\n' });
    }, 90_000);
  });
});

describe("the packages' README examples, as written", () => {
  const cases = [
    { pkg: 'core', name: 'core', expected: /^order\.placed o-1 42 \(id [0-9a-f-]{36}, attempt 1\)\n$/ },
    { pkg: 'redis-stream', name: 'redis-stream', expected: /^anchor\.income \{ anchorId: 'a1', amount: 30 \} \d+-\d+\n$/ },
    { pkg: 'kafka', name: 'kafka', expected: /^anchor\.income \{ anchorId: 'a1', amount: 30 \} \d+:0\n$/ },
  ];
  it.each(cases)('$pkg: prints what its handler got, then exits by itself', async ({ pkg, name, expected }) => {
    const example = readmeExamples(join(root, 'packages', pkg, 'README.md'))[name];
    expect(example?.lang).toBe('ts');
    // The shared brokers: their addresses, and a topic (and module) of this run only.
    const fresh = `readme-${pkg}-${run}`;
    const code = (example?.code ?? '')
      .replaceAll("'live'", `'${fresh}'`)
      .replaceAll("'orders'", `'${fresh}'`)
      .replace("'redis://127.0.0.1:6379'", JSON.stringify(REDIS_URL))
      .replace("['127.0.0.1:9092']", JSON.stringify(KAFKA_BROKERS.split(',')));
    const file = join(work, `${pkg}.mts`);
    writeFileSync(file, code);
    const out = await runNode(['--import', 'tsx', file], { timeoutMs: 60_000 });
    expect({ code: out.code, stdout: out.stdout }, out.stderr).toEqual({ code: 0, stdout: expect.stringMatching(expected) });
  }, 90_000);
});
