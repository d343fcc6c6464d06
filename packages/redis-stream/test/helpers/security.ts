import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { Metrics, Tracing } from '@bus/core';
import { stringify } from '../../../../test/helpers/security.js';

// The helpers every driver's failure tests share live in test/helpers/security.ts at the root.
export { capturingLogger, makePki, silentServer, stringify, type TestPki } from '../../../../test/helpers/security.js';

/** A redis-server with extra arguments, on a given port; `stop()` kills it. */
export async function startRedisWith(port: number, args: string[]): Promise<{ pid: number; stop(): Promise<void> }> {
  const child: ChildProcess = spawn('redis-server', ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', ...args], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server ${args.join(' ')} exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: child.pid as number,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGCONT');
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Metrics and tracing that record every label set and span attribute they get, as text. */
export function recordingObservers(): { metrics: Metrics; tracing: Tracing; records: string[] } {
  const records: string[] = [];
  const metrics = new Proxy({} as Metrics, {
    get: (_target, name) => (...args: unknown[]) => {
      records.push(`metrics.${String(name)} ${stringify(args)}`);
    },
  });
  const tracing: Tracing = {
    publish: (info, carriers, fn) => {
      records.push(`span publish ${stringify({ info, carriers })}`);
      return fn();
    },
    process: (info, fn) => {
      records.push(`span process ${stringify(info)}`);
      return fn();
    },
  };
  return { metrics, tracing, records };
}
