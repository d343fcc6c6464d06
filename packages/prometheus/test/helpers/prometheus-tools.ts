// Test helpers around the real Prometheus tools (Debian package `prometheus`: /usr/bin/prometheus and
// /usr/bin/promtool). Nothing here is skipped when a tool is missing: the test fails and says how to
// install it. Reusable by other packages' tests (e.g. the live-tasks example): copy or import.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@bus/core/testing';

const INSTALL_HINT = 'install the Debian package "prometheus" (apt-get update && apt-get install -y --no-install-recommends prometheus)';

/** Path of a Prometheus tool; throws a clear error when it is not installed. */
export function requireTool(name: 'prometheus' | 'promtool'): string {
  const probe = spawnSync(name, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.error || probe.status !== 0) {
    throw new Error(`"${name}" is not runnable (${probe.error?.message ?? `exit ${probe.status}`}); ${INSTALL_HINT}`);
  }
  return name;
}

/** Runs promtool; resolves its exit code and output (never rejects on a non-zero exit). */
export function promtool(args: readonly string[], stdin?: string): { status: number | null; output: string } {
  const tool = requireTool('promtool');
  const result = spawnSync(tool, args, { input: stdin, encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RunningPrometheus {
  /** Base URL of the server's HTTP API, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Instant query; rejects on an API error (bad PromQL included). */
  query(promql: string): Promise<PromSample[]>;
  /** Polls `query` until `accept` holds or `timeoutMs` passes; returns the last result. */
  waitFor(promql: string, accept: (samples: PromSample[]) => boolean, timeoutMs?: number): Promise<PromSample[]>;
  /** Output of the server so far (for failure messages). */
  log(): string;
  /** Stops the server (SIGTERM, SIGKILL after 5 s) and removes its storage. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a real Prometheus server on a loopback port, scraping `targets` (host:port) every second at
 * `metricsPath`, with its TSDB in a fresh temporary directory. Resolves once `/-/ready` answers.
 */
export async function startPrometheus(options: { targets: string[]; metricsPath?: string; ruleFiles?: string[] }): Promise<RunningPrometheus> {
  const binary = requireTool('prometheus');
  const dir = await mkdtemp(join(tmpdir(), 'bus-prometheus-'));
  const port = await freePort();
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    ...(options.ruleFiles?.length ? ['rule_files:', ...options.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)] : []),
    'scrape_configs:',
    '  - job_name: bus',
    `    metrics_path: ${JSON.stringify(options.metricsPath ?? '/metrics')}`,
    '    static_configs:',
    `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    '',
  ].join('\n');
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, config);
  let output = '';
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      '--storage.tsdb.retention.time=1h',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    })();
    return closed;
  };
  const url = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${output}`);
      const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`prometheus not ready after 20 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (error) {
    await close();
    throw error;
  }
  const query = async (promql: string): Promise<PromSample[]> => {
    const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
    if (body.status !== 'success') throw new Error(`query ${promql} failed: ${body.error}`);
    return body.data?.resultType === 'vector' ? (body.data.result ?? []) : [];
  };
  return {
    url,
    query,
    async waitFor(promql, accept, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const samples = await query(promql);
        if (accept(samples) || Date.now() > deadline) return samples;
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    log: () => output,
    close,
  };
}
