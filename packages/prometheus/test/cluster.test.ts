import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promtool } from './helpers/prometheus-tools.js';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
// Inside the package's node_modules so that the bundle's `import 'prom-client'` resolves to the
// package's prom-client: one copy for the bus metrics and the cluster aggregator.
const bundle = here('../node_modules/.cache/bus-test/cluster-app.mjs');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('clusterMetricsServer with a node:cluster primary and 2 workers', { timeout: 20_000 }, () => {
  let primary: ChildProcess;
  let info: { url: string; workers: number[] };
  let stderr = '';

  beforeAll(async () => {
    await build({
      entryPoints: [here('./fixtures/cluster-app.ts')],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      external: ['prom-client'],
      alias: { '@bus/core/kit': here('../../core/src/kit/index.ts'), '@bus/core': here('../../core/src/index.ts') },
      logLevel: 'silent',
    });
    primary = spawn(process.execPath, [bundle], { stdio: ['pipe', 'pipe', 'pipe'] });
    primary.stderr?.on('data', (d) => (stderr += d));
    let stdout = '';
    info = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cluster app not ready in 20 s; stderr:\n${stderr}`)), 20_000);
      primary.stdout?.on('data', (d) => {
        stdout += d;
        const line = stdout.split('\n')[0];
        if (stdout.includes('\n') && line) {
          clearTimeout(timer);
          resolve(JSON.parse(line));
        }
      });
      primary.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`cluster app exited with ${code}; stderr:\n${stderr}`));
      });
    });
  }, 30_000);

  afterAll(async () => {
    if (primary && primary.exitCode === null && primary.signalCode === null) {
      const exited = once(primary, 'exit');
      primary.kill('SIGTERM');
      const killer = setTimeout(() => primary.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
  }, 15_000);

  it('one scrape shows the messages handled by both workers', async () => {
    expect(info.workers).toHaveLength(2);
    const response = await fetch(info.url);
    expect(response.status).toBe(200);
    const text = await response.text();
    const job = 'module="tasks",consumer="runner",event="task.run",transport="memory"';
    // Worker 0 handled 3, worker 1 handled 5: only the sum of both gives 8.
    expect(text).toContain(`messagebus_consumed_total{${job}} 8`);
    expect(text).toContain(`messagebus_job_cost_count{${job},outcome="success"} 8`);
    expect(text).toContain(`messagebus_job_delay_count{${job}} 8`);
    expect(text).toContain('messagebus_published_total{transport="memory",topic="tasks",event="task.run",outcome="ok"} 8');
    // Lag: every worker sees the same group, so the largest value, not the sum; pools add up.
    expect(text).toContain('messagebus_consumer_lag{transport="memory",group="reporting-replica",topic="tasks"} 20');
    expect(text).toContain('messagebus_pool_size{transport="memory",pool="consumer"} 4');
    const { status, output } = promtool(['check', 'metrics'], text);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('stops the primary and both workers on SIGTERM', async () => {
    const exited = once(primary, 'exit');
    primary.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    const deadline = Date.now() + 5000;
    while (info.workers.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(info.workers.filter(alive)).toEqual([]);
  });
});
