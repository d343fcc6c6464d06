/**
 * Helpers shared by the scenarios: a consumer process of ours that prints one JSON object per line, and a
 * private redis-server on a loopback port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { cli, sleep, waitUntil } from './redis-topology.js';

/**
 * Starts `node --import tsx script ...args`; every stdout line is parsed as JSON and given to `onLine`.
 * Resolves once the process printed `{ ready }` (at most `readyMs`).
 */
export async function spawnJsonLines(
  script: string,
  args: string[],
  onLine: (line: Record<string, unknown>) => void,
  options: { env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore'; readyMs?: number } = {},
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: [options.stdin ?? 'ignore', 'pipe', 'inherit'], env: options.env ?? process.env });
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, options.readyMs ?? 30_000);
    child.once('exit', () => resolve());
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return;
      }
      if (line.ready) {
        clearTimeout(timer);
        return resolve();
      }
      onLine(line);
    });
  });
  return child;
}

/** SIGKILL (or `signal`) and wait for the exit, bounded. */
export async function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL', ms = 5000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await Promise.race([exited, sleep(ms)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** A redis-server of our own on 127.0.0.1:`port` (`extra` arguments appended); resolves once it answers PING. */
export async function startRedisServer(port: number, extra: string[] = []): Promise<ChildProcess> {
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', ...extra], { stdio: 'ignore' });
  try {
    await waitUntil(`redis-server on ${port}`, async () => (await cli(port, 'PING')) === 'PONG', 10_000);
  } catch (error) {
    server.kill('SIGKILL');
    throw error;
  }
  return server;
}
