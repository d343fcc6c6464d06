// Test helpers for the failure and secrecy tests of every driver (redis-stream, kafka, kafka-platformatic):
// a logger that keeps every line, errors as text with their causes, a port that never answers, a CA.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogFields, Logger } from '@bus/core';

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

/** An error or any value as text, with every `cause` and aggregated `errors` down the chain and every own property. */
export function stringify(value: unknown): string {
  const seen = new Set<unknown>();
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[circular]';
      seen.add(v);
    }
    if (v instanceof Error) {
      const { cause, errors } = v as { cause?: unknown; errors?: unknown };
      return { ...(v as unknown as Record<string, unknown>), name: v.name, message: v.message, stack: v.stack, cause, errors };
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
