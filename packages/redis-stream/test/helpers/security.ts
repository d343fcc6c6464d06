import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger, LogFields, Metrics, Tracing } from '@bus/core';

/** Everything logged, at every level, as text (errors with their causes), to grep for secrets. */
export function capturingLogger(): Logger & { lines: string[]; text(): string } {
  const lines: string[] = [];
  const make = (bindings: LogFields): Logger => {
    const write = (level: string) => (message: string, fields?: LogFields) => {
      lines.push(`${level} ${message} ${stringify({ ...bindings, ...fields })}`);
    };
    return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error'), child: (more) => make({ ...bindings, ...more }) };
  };
  return Object.assign(make({}), { lines, text: () => lines.join('\n') });
}

/** An error or any value as text, with every `cause` down the chain and every own property. */
export function stringify(value: unknown): string {
  const seen = new Set<unknown>();
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[circular]';
      seen.add(v);
    }
    if (v instanceof Error) {
      return { ...(v as unknown as Record<string, unknown>), name: v.name, message: v.message, stack: v.stack, cause: (v as { cause?: unknown }).cause };
    }
    if (typeof v === 'bigint') return String(v);
    return v;
  });
}

/** A TCP server that accepts connections and never answers (a half-dead proxy, a wrong service). */
export async function silentServer(port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A throwaway CA and a server certificate for 127.0.0.1/localhost, made with openssl. */
export interface TestPki {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: Buffer;
  dispose(): void;
}

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'bus-tls-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 30_000 });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=bus test CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  execFileSync('sh', ['-c', 'printf "subjectAltName=IP:127.0.0.1,DNS:localhost\\n" > ext.cnf'], { cwd: dir });
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf');
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    ca: readFileSync(join(dir, 'ca.crt')),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

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
