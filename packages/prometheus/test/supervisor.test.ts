// supervisorMetricsServer + exposeToSupervisor: the workers of @bus/core's fork-based supervise() behind
// one scrape, aggregated over the supervisor's IPC channel.
import { fileURLToPath } from 'node:url';
import { type Supervisor, supervise } from '@bus/runtime';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exposeToSupervisor, type MetricsServer, supervisorMetricsServer } from '../src/index.js';
import { promtool } from './helpers/prometheus-tools.js';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
// Inside the package's node_modules so that the bundle's `import 'prom-client'` resolves to the
// package's prom-client (the one this test process uses too).
const bundle = here('../node_modules/.cache/bus-test/supervised-worker.mjs');

beforeAll(async () => {
  await build({
    entryPoints: [here('./fixtures/supervised-worker.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    external: ['prom-client'],
    alias: { '@bus/core/kit': here('../../core/src/kit/index.ts'), '@bus/core': here('../../core/src/index.ts'), '@bus/runtime': here('../../runtime/src/index.ts') },
    logLevel: 'silent',
  });
});

function start(processes: number, env: Record<string, string> = {}): Supervisor {
  return supervise({
    script: bundle,
    execArgv: [],
    env: { ...process.env, ...env },
    handleSignals: false,
    groups: [{ name: 'tasks', processes, restartDelayMs: 100, killTimeoutMs: 5000 }],
  });
}

describe('supervisorMetricsServer with 2 supervised worker processes', { timeout: 30_000 }, () => {
  let supervisor: Supervisor;
  let server: MetricsServer;

  beforeAll(async () => {
    supervisor = start(2);
    server = await supervisorMetricsServer(supervisor, { port: 0, host: '127.0.0.1' });
    await supervisor.ready;
    // Worker #0 handles 3 messages, worker #1 handles 5.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const handled = await supervisor.askWorkers<number>('fixture:handled');
      if (handled.map((r) => r.ok && r.value).join() === '3,5') break;
      if (Date.now() > deadline) throw new Error(`workers did not handle their messages: ${JSON.stringify(handled)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 30_000);

  afterAll(async () => {
    await supervisor?.stop();
    await server?.close();
  }, 15_000);

  it('one scrape shows the messages handled by both workers, and promtool accepts it', async () => {
    expect(supervisor.workers().map((w) => w.status)).toEqual(['ready', 'ready']);
    const response = await fetch(server.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const job = 'module="tasks",consumer="runner",event="task.run",transport="memory"';
    // Only the sum of both workers gives 8.
    expect(text).toContain(`messagebus_consumed_total{${job}} 8`);
    expect(text).toContain(`messagebus_job_cost_count{${job},outcome="success"} 8`);
    expect(text).toContain(`messagebus_job_delay_count{${job}} 8`);
    expect(text).toContain(`messagebus_job_delay_bucket{le="+Inf",${job}} 8`);
    expect(text).toContain('messagebus_published_total{transport="memory",topic="tasks",event="task.run",outcome="ok"} 8');
    // Lag: every worker sees the same group, so the largest value, not the sum; pools add up.
    expect(text).toContain('messagebus_consumer_lag{transport="memory",group="tasks-other",topic="other"} 20');
    expect(text).toContain('messagebus_pool_size{transport="memory",pool="consumer"} 4');
    const { status, output } = promtool(['check', 'metrics'], text);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('serves 404 off its path and 405 for other methods', async () => {
    expect((await fetch(new URL('/other', server.url))).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
  });

  it('still counts both after a worker was restarted (the new process starts from 0)', async () => {
    const [first] = supervisor.workers();
    process.kill(first?.pid as number, 'SIGKILL');
    const deadline = Date.now() + 15_000;
    while (!(supervisor.workers()[0]?.restarts === 1 && supervisor.workers()[0]?.status === 'ready') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // Re-started worker #0 publishes and handles its 3 again: 3 (new #0) + 5 (#1).
    let text = '';
    while (Date.now() < deadline) {
      text = await (await fetch(server.url)).text();
      if (text.includes('messagebus_consumed_total{module="tasks",consumer="runner",event="task.run",transport="memory"} 8')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(text).toContain('messagebus_consumed_total{module="tasks",consumer="runner",event="task.run",transport="memory"} 8');
  });

  it('closes with the supervisor', async () => {
    expect(await supervisor.stop()).toBe(0);
    await expect(fetch(server.url)).rejects.toThrow();
  });
});

describe('supervisorMetricsServer with a worker that does not expose its metrics', { timeout: 30_000 }, () => {
  it('fails the scrape with 500 naming the worker, instead of reporting part of the workers', async () => {
    const supervisor = start(1, { NO_EXPOSE: '1' });
    try {
      const server = await supervisorMetricsServer(supervisor, { port: 0, host: '127.0.0.1', timeoutMs: 500 });
      await supervisor.ready;
      const response = await fetch(server.url);
      expect(response.status).toBe(500);
      expect(await response.text()).toMatch(/worker tasks#0 \(pid \d+\) gave no metrics: no-handler: no handler for "bus\/prometheus:metrics"/);
    } finally {
      await supervisor.stop();
    }
  });

  it('validates its arguments; exposeToSupervisor is a no-op outside a supervised worker', async () => {
    await expect(supervisorMetricsServer({} as Supervisor)).rejects.toThrow('[bus/prometheus] supervisor must be a Supervisor');
    expect(exposeToSupervisor()).toBe(false);
    expect(() => exposeToSupervisor({} as never)).toThrow('[bus/prometheus] registry must be a prom-client Registry');
  });
});
