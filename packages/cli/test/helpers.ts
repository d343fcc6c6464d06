import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
export const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
export const CONFIG = fileURLToPath(new URL('./fixtures/bus.config.ts', import.meta.url));
export const MEMORY_CONFIG = fileURLToPath(new URL('./fixtures/memory.config.ts', import.meta.url));
const TSCONFIG = fileURLToPath(new URL('./fixtures/tsconfig.json', import.meta.url));

/** A running `bus` process (the CLI from source, through tsx), with its output parsed into lines. */
export interface BusProcess {
  child: ChildProcess;
  /** stdout lines: JSON lines of the fixture's handlers, or command output. */
  stdout: string[];
  /** stderr lines: JSON log lines and errors. */
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Parsed JSON lines of stdout (others skipped). */
  json(): Record<string, unknown>[];
  /** Parsed JSON log lines of stderr. */
  logs(): Record<string, unknown>[];
}

const running = new Set<ChildProcess>();

/** Starts `bus <args>`; its own process group, so {@link killAll} can take its workers down too. */
export function bus(args: readonly string[], env: Record<string, string> = {}): BusProcess {
  const child = spawn(process.execPath, ['--import', TSX, BIN, ...args], {
    // Through tsx, start-up alone can take seconds on a busy machine: these tests are not about the deadline.
    env: { ...process.env, TSX_TSCONFIG_PATH: TSCONFIG, BUS_DEBUG: '1', BUS_TIMEOUT_MS: '60000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  running.add(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => stdout.push(l));
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (l) => stderr.push(l));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    // 'close': the pipes are drained too (workers share them and may write after the parent's exit).
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, at: Date.now() });
    });
  });
  const parse = (lines: string[]) =>
    lines.flatMap((l) => {
      try {
        const v = JSON.parse(l) as unknown;
        return typeof v === 'object' && v !== null ? [v as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  return { child, stdout, stderr, exited, json: () => parse(stdout), logs: () => parse(stderr) };
}

/** Runs `bus <args>` to its end (bounded). */
export async function busDone(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 60_000) {
  const p = bus(args, env);
  const timer = setTimeout(() => killGroup(p.child), timeoutMs);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout.join('\n'), stderr: p.stderr.join('\n'), json: p.json() };
}

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** SIGKILLs every `bus` process these tests started, with their workers. For `afterAll`. */
export function killAll(): void {
  for (const child of running) killGroup(child);
  running.clear();
}

export async function waitFor(what: string, predicate: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Ids with a handler `end` line, and `start` ids without one. */
export function handled(p: BusProcess): { ended: Set<string>; unfinished: string[] } {
  const lines = p.json();
  const ended = new Set(lines.filter((l) => typeof l.end === 'string').map((l) => l.end as string));
  // A start is finished by an end of the same id in the same process.
  const open = new Map<string, number>();
  for (const l of lines) {
    if (typeof l.start === 'string') open.set(`${l.pid}/${l.start}`, (open.get(`${l.pid}/${l.start}`) ?? 0) + 1);
    if (typeof l.end === 'string') open.set(`${l.pid}/${l.end}`, (open.get(`${l.pid}/${l.end}`) ?? 0) - 1);
  }
  return { ended, unfinished: [...open].filter(([, n]) => n > 0).map(([k]) => k) };
}

export function logsMatching(p: BusProcess, pattern: RegExp): Record<string, unknown>[] {
  return p.logs().filter((l) => typeof l.msg === 'string' && pattern.test(l.msg));
}

export async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}
