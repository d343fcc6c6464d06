import { type ChildProcess, fork } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OptionReader } from './config.js';
import { type Logger, silentLogger } from './logger.js';

/**
 * Worker processes: a number of consumer processes per module, restarted when they die, done with
 * `child_process.fork`. The parent ({@link supervise}) holds no broker connection; each worker runs a
 * bus (usually one module) and settles its own messages, so a worker that dies leaves its unsettled
 * messages to the broker to deliver again (Redis `XAUTOCLAIM`, Kafka rebalance).
 *
 * Parent and workers talk over the fork IPC channel with namespaced messages: `{bus: 'worker'}` (a
 * worker's state), and `{bus: 'request'}` / `{bus: 'response'}` with an id for
 * {@link Supervisor.askWorkers} / {@link answerSupervisor} (e.g. collecting every worker's metrics).
 */

/** Environment variables the supervisor gives each worker. */
export const WORKER_ENV = {
  /** Name of the worker's group (the module it runs). */
  group: 'BUS_WORKER_GROUP',
  /** 0-based slot of the worker in its group; a restarted worker keeps its slot. */
  index: 'BUS_WORKER_INDEX',
} as const;

/** IPC messages between a worker and its supervisor (`process.send`). */
export type WorkerMessage = { bus: 'worker'; state: 'ready' | 'draining' };

/** IPC request of {@link Supervisor.askWorkers} to a worker: answer `topic`, quoting `id`. */
export type SupervisorRequest = { bus: 'request'; id: number; topic: string };

/** IPC answer of a worker to a {@link SupervisorRequest} (see {@link answerSupervisor}). */
export type WorkerResponse =
  | { bus: 'response'; id: number; ok: true; value: unknown }
  | { bus: 'response'; id: number; ok: false; reason: 'no-handler' | 'error'; error: string };

/** Options of {@link Supervisor.askWorkers}. */
export interface AskWorkersOptions {
  /** How long to wait for the answers, in ms; a worker silent this long is reported as `timeout`. @default 5000 */
  timeoutMs?: number;
}

/**
 * Why a worker gave no value to {@link Supervisor.askWorkers}:
 * - `timeout`: no answer within `timeoutMs` (also a worker that never called {@link answerSupervisor});
 * - `no-handler`: the worker answers requests, but has no handler for this topic;
 * - `error`: its handler threw or rejected (or returned a value IPC cannot carry); `error` has the message;
 * - `exited`: the worker exited, or its IPC channel closed, before answering.
 */
export type AskFailure = 'timeout' | 'no-handler' | 'error' | 'exited';

/** One worker's reply to {@link Supervisor.askWorkers}. */
export type WorkerReply<T = unknown> = WorkerInfo &
  ({ ok: true; value: T } | { ok: false; reason: AskFailure; error: string });

/** One kind of worker: `processes` copies of the same script, e.g. all the workers of one module. */
export interface WorkerGroupOptions {
  /** Group name, usually the module's; in logs, health and `BUS_WORKER_GROUP`. */
  name: string;
  /** How many worker processes run at once. @default 1 */
  processes?: number;
  /** Arguments after the script (overrides {@link SuperviseOptions.args}). @default SuperviseOptions.args */
  args?: readonly string[];
  /** Extra environment variables of these workers. @default {} */
  env?: Readonly<Record<string, string>>;
  /** Wait before a dead worker is started again, in ms. @default 1000 */
  restartDelayMs?: number;
  /**
   * A worker that keeps crashing waits twice as long before each new start, up to this, in ms.
   * @default 30000
   */
  maxRestartDelayMs?: number;
  /** A worker that ran at least this long before dying starts again after `restartDelayMs`, in ms. @default 10000 */
  stableAfterMs?: number;
  /**
   * After SIGTERM, how long a worker may take to drain and exit before it is killed with SIGKILL, in
   * ms. Its unacknowledged messages are then delivered again by the broker. Make it longer than the
   * module's `drainTimeoutMs`. @default 20000
   */
  killTimeoutMs?: number;
  /** Serve `/live` and `/ready` for this group from the supervisor (see {@link healthServer}). @default undefined */
  health?: HealthOptions;
}

export interface SuperviseOptions {
  /** The worker's entry script (what `fork` runs). */
  script: string;
  /** Arguments of every worker. @default [] */
  args?: readonly string[];
  /** Node flags of the workers (e.g. `['--import', 'tsx']`). @default process.execArgv */
  execArgv?: readonly string[];
  /** Environment of the workers (the group's `env` and `BUS_WORKER_*` are added). @default process.env */
  env?: NodeJS.ProcessEnv;
  /** @default process.cwd() */
  cwd?: string;
  groups: readonly WorkerGroupOptions[];
  /** @default silentLogger */
  logger?: Logger;
  /**
   * Stop on SIGTERM and SIGINT of this process (a second signal kills the workers at once), and exit
   * with the supervisor's exit code once they are gone. Turn off to call {@link Supervisor.stop} yourself.
   * @default true
   */
  handleSignals?: boolean;
}

export type WorkerStatus = 'starting' | 'ready' | 'draining' | 'waiting' | 'stopped';

/** A snapshot of one worker slot. */
export interface WorkerInfo {
  group: string;
  index: number;
  /** Pid of the running process; undefined while waiting for a restart or stopped. */
  pid: number | undefined;
  status: WorkerStatus;
  /** How many times this slot's process died and was started again. */
  restarts: number;
}

export interface Supervisor extends AsyncDisposable {
  /** Resolves once every worker has reported ready once (see {@link runWorker}); rejects if the supervisor stops first. */
  readonly ready: Promise<void>;
  /** Resolves with the exit code once every worker is gone: 0 when all drained and exited 0, else 1. */
  readonly stopped: Promise<number>;
  /** Bound health servers by group. */
  readonly health: ReadonlyMap<string, HealthServer>;
  workers(): WorkerInfo[];
  /**
   * Asks every running worker (status `starting`, `ready` or `draining`, IPC channel connected) for
   * `topic` over the IPC channel, and resolves once each has answered, or after `timeoutMs`, with one
   * {@link WorkerReply} per worker asked, in slot order. It never rejects: a worker that does not
   * answer in time, exits first, has no handler for the topic or whose handler fails is in the list
   * with `ok: false` and the reason, so the caller decides whether a partial answer will do.
   * Workers waiting for a restart are not asked. Late answers are dropped.
   *
   * Workers answer with {@link answerSupervisor}. `T` is what the caller expects their handlers to
   * return; it is not checked. Values travel as JSON (Node's default IPC serialization).
   *
   * @throws {ConfigError} when `topic` is not a non-empty string or `timeoutMs` is invalid
   */
  askWorkers<T = unknown>(topic: string, options?: AskWorkersOptions): Promise<WorkerReply<T>[]>;
  /**
   * Closes `resource` once every worker is gone, when the supervisor stops (after the health
   * servers, before {@link Supervisor.stopped} resolves); at once if it has stopped already. For what
   * lives as long as the supervisor, e.g. a metrics server that asks the workers. Errors of its
   * `close()` are logged, not thrown.
   */
  closeOnStop(resource: Closeable): void;
  /**
   * Stops restarting, sends SIGTERM to every worker and waits for them (SIGKILL after `killTimeoutMs`).
   * Resolves with the exit code, like {@link Supervisor.stopped}. Idempotent.
   */
  stop(): Promise<number>;
}

interface Slot extends WorkerInfo {
  child: ChildProcess | undefined;
  startedAt: number;
  crashes: number;
  timer: NodeJS.Timeout | undefined;
  wasReady: boolean;
  exited: Promise<void>;
}

/** An {@link Supervisor.askWorkers} call waiting for its answers. */
interface PendingAsk {
  answer(child: ChildProcess, message: WorkerResponse): void;
  gone(child: ChildProcess): void;
}

interface ResolvedGroup {
  name: string;
  processes: number;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  restartDelayMs: number;
  maxRestartDelayMs: number;
  stableAfterMs: number;
  killTimeoutMs: number;
  health: HealthOptions | undefined;
}

/**
 * Runs worker processes and keeps them running: a worker that dies is started again after
 * `restartDelayMs`, doubling up to `maxRestartDelayMs` while it keeps dying young, with a log line
 * naming the exit code or signal. `stop()` (or SIGTERM / SIGINT) drains: each worker gets SIGTERM,
 * and one still running after `killTimeoutMs` gets SIGKILL.
 *
 * Workers start at once (eagerly). In each worker, call {@link runWorker} (or {@link closeOnSignals}).
 *
 * ```ts
 * const supervisor = supervise({ script: './worker.js', groups: [{ name: 'tasks', processes: 2 }] });
 * await supervisor.ready;
 * ```
 */
export function supervise(options: SuperviseOptions): Supervisor {
  const r: OptionReader = new OptionReader('bus', 'supervise');
  r.object('options', options);
  const script = r.string('script', options.script);
  const baseArgs = options.args ?? [];
  const execArgv = options.execArgv ?? process.execArgv;
  const log = (options.logger ?? silentLogger).child({ component: 'supervisor' });
  const rawGroups = options.groups as unknown;
  if (!Array.isArray(rawGroups) || rawGroups.length === 0) r.fail('groups', 'must be a non-empty array', rawGroups);
  const groups: ResolvedGroup[] = (rawGroups as WorkerGroupOptions[]).map((g, i) => {
    const gr = r.at(`groups[${i}]`);
    gr.object('<group>', g);
    const restartDelayMs = gr.int('restartDelayMs', g.restartDelayMs, 1000, 0);
    const health = gr.object('health', g.health, true) as HealthOptions | undefined;
    if (health) gr.at('health').int('port', health.port, 0, 0, 65535);
    return {
      name: gr.string('name', g.name),
      processes: gr.int('processes', g.processes, 1, 1, 1024),
      args: g.args ?? baseArgs,
      env: g.env ?? {},
      restartDelayMs,
      maxRestartDelayMs: gr.int('maxRestartDelayMs', g.maxRestartDelayMs, Math.max(30_000, restartDelayMs), restartDelayMs),
      stableAfterMs: gr.int('stableAfterMs', g.stableAfterMs, 10_000, 0),
      killTimeoutMs: gr.int('killTimeoutMs', g.killTimeoutMs, 20_000, 0),
      health,
    };
  });
  const names = new Set<string>();
  for (const g of groups) {
    if (names.has(g.name)) r.fail('groups', `name "${g.name}" twice`, g.name);
    names.add(g.name);
  }

  const slots = new Map<string, Slot[]>();
  const asks = new Map<number, PendingAsk>();
  let nextAskId = 0;
  const owned: Closeable[] = [];
  let ownedClosed = false;
  const healthServers = new Map<string, HealthServer>();
  let stopping: Promise<number> | undefined;
  let forced = false;
  let resolveReady: () => void = () => {};
  let rejectReady: (error: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  // Callers that never await `ready` must not see an unhandled rejection when stopping early.
  ready.catch(() => {});
  let resolveStopped: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => {
    resolveStopped = resolve;
  });

  const checkReady = () => {
    for (const list of slots.values()) for (const s of list) if (!s.wasReady) return;
    resolveReady();
  };

  const start = (group: ResolvedGroup, slot: Slot) => {
    slot.timer = undefined;
    if (stopping) return;
    const env = {
      ...(options.env ?? process.env),
      ...group.env,
      [WORKER_ENV.group]: group.name,
      [WORKER_ENV.index]: String(slot.index),
    };
    const child = fork(script, [...group.args], { execArgv: [...execArgv], env, cwd: options.cwd ?? process.cwd(), stdio: 'inherit' });
    slot.child = child;
    slot.pid = child.pid;
    slot.status = 'starting';
    slot.startedAt = Date.now();
    const worker = `${group.name}#${slot.index}`;
    log.info(`worker ${worker} started (pid ${child.pid})`, { group: group.name, worker: slot.index, pid: child.pid, restarts: slot.restarts });
    child.on('message', (message: unknown) => {
      const m = message as Partial<WorkerMessage> | Partial<WorkerResponse> | null;
      if (m?.bus === 'response') {
        if (typeof m.id === 'number') asks.get(m.id)?.answer(child, m as WorkerResponse);
        return;
      }
      if (m?.bus !== 'worker') return;
      if (m.state === 'ready') {
        if (slot.status === 'starting') slot.status = 'ready';
        slot.wasReady = true;
        checkReady();
      } else if (m.state === 'draining') slot.status = 'draining';
    });
    child.on('error', (error) => log.error(`worker ${worker} (pid ${child.pid}): ${error.message}`, { group: group.name, worker: slot.index, error }));
    slot.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        for (const ask of asks.values()) ask.gone(child);
        slot.child = undefined;
        slot.pid = undefined;
        const how = signal ? `was killed by signal ${signal}` : `exited with code ${code}`;
        const fields = { group: group.name, worker: slot.index, pid: child.pid, code, signal };
        if (stopping) {
          slot.status = 'stopped';
          if (code === 0) log.info(`worker ${worker} (pid ${child.pid}) ${how}`, fields);
          else log.warn(`worker ${worker} (pid ${child.pid}) ${how} while stopping`, fields);
          slot.crashes = code === 0 ? 0 : slot.crashes + 1;
          resolve();
          return;
        }
        const lived = Date.now() - slot.startedAt;
        slot.crashes = lived >= group.stableAfterMs ? 1 : slot.crashes + 1;
        const delay = Math.min(group.restartDelayMs * 2 ** (slot.crashes - 1), group.maxRestartDelayMs);
        slot.status = 'waiting';
        slot.restarts++;
        log.error(
          `worker ${worker} (pid ${child.pid}) ${how} after ${lived} ms; restarting in ${delay} ms` +
            (slot.crashes > 1 ? ` (died ${slot.crashes} times in a row, backing off)` : ''),
          { ...fields, livedMs: lived, restartInMs: delay, crashes: slot.crashes },
        );
        slot.timer = setTimeout(() => start(group, slot), delay);
        resolve();
      });
    });
  };

  for (const group of groups) {
    const list: Slot[] = [];
    slots.set(group.name, list);
    for (let index = 0; index < group.processes; index++) {
      const slot: Slot = {
        group: group.name,
        index,
        pid: undefined,
        status: 'starting',
        restarts: 0,
        child: undefined,
        startedAt: 0,
        crashes: 0,
        timer: undefined,
        wasReady: false,
        exited: Promise.resolve(),
      };
      list.push(slot);
      start(group, slot);
    }
    if (group.health) {
      const list2 = list;
      healthServer({
        ...group.health,
        check: () => {
          const workers = list2.map((s) => ({ worker: s.index, pid: s.pid, status: s.status, restarts: s.restarts }));
          return { ready: !stopping && list2.every((s) => s.status === 'ready'), detail: { group: group.name, workers } };
        },
      })
        .then((server) => {
          healthServers.set(group.name, server);
          log.info(`health of ${group.name} on http://${server.host}:${server.port}/ready`, { group: group.name, port: server.port });
          if (stopping) void server.close();
        })
        .catch((error: Error) => log.error(`health server of ${group.name} could not listen: ${error.message}`, { group: group.name, error }));
    }
  }

  const all = () => [...slots.values()].flat();

  const kill = (slot: Slot) => {
    if (!slot.child || slot.child.exitCode !== null || slot.child.signalCode !== null) return;
    slot.child.kill('SIGKILL');
  };

  const closeQuietly = (resource: Closeable) =>
    Promise.resolve()
      .then(() => resource.close())
      .catch((error: unknown) => log.error(`closing a resource of the supervisor failed: ${(error as Error)?.message ?? error}`, { error }));

  const stop = (): Promise<number> => {
    stopping ??= (async () => {
      rejectReady(new Error('[bus] supervisor stopped before every worker was ready'));
      const list = all();
      let code = 0;
      await Promise.all(
        list.map(async (slot) => {
          clearTimeout(slot.timer);
          slot.timer = undefined;
          const child = slot.child;
          if (!child) {
            slot.status = 'stopped';
            return;
          }
          const group = groups.find((g) => g.name === slot.group) as ResolvedGroup;
          slot.status = 'draining';
          child.kill('SIGTERM');
          const timer = setTimeout(() => {
            log.error(
              `worker ${slot.group}#${slot.index} (pid ${child.pid}) did not exit within ${group.killTimeoutMs} ms of SIGTERM; ` +
                'killing it (SIGKILL): the broker will deliver its unacknowledged messages again',
              { group: slot.group, worker: slot.index, pid: child.pid },
            );
            kill(slot);
          }, group.killTimeoutMs);
          if (forced) kill(slot);
          await new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) resolve();
            else child.once('exit', () => resolve());
          });
          clearTimeout(timer);
          if (child.exitCode !== 0) code = 1;
        }),
      );
      await Promise.allSettled([...healthServers.values()].map((s) => s.close()));
      ownedClosed = true;
      await Promise.all(owned.splice(0).map(closeQuietly));
      log.info('all workers stopped', { exitCode: code });
      return code;
    })();
    void stopping.then(resolveStopped);
    return stopping;
  };

  const askWorkers = <T>(topic: string, askOptions: AskWorkersOptions = {}): Promise<WorkerReply<T>[]> => {
    const ar = new OptionReader('bus', 'askWorkers');
    ar.string('topic', topic);
    ar.object('options', askOptions);
    const timeoutMs = ar.int('timeoutMs', askOptions.timeoutMs, 5000, 1);
    const asked = all().filter((s) => s.child?.connected && s.status !== 'waiting' && s.status !== 'stopped');
    if (asked.length === 0) return Promise.resolve([]);
    const id = nextAskId++;
    return new Promise((resolve) => {
      const replies: (WorkerReply<T> | undefined)[] = asked.map(() => undefined);
      const children = asked.map((s) => s.child as ChildProcess);
      let open = asked.length;
      const settle = (i: number, outcome: { ok: true; value: T } | { ok: false; reason: AskFailure; error: string }) => {
        if (replies[i]) return;
        const s = asked[i] as Slot;
        replies[i] = { group: s.group, index: s.index, pid: children[i]?.pid, status: s.status, restarts: s.restarts, ...outcome };
        if (--open > 0) return;
        clearTimeout(timer);
        asks.delete(id);
        resolve(replies as WorkerReply<T>[]);
      };
      const timer = setTimeout(() => {
        for (let i = 0; i < asked.length; i++) settle(i, { ok: false, reason: 'timeout', error: `no answer to "${topic}" within ${timeoutMs} ms` });
      }, timeoutMs);
      asks.set(id, {
        answer: (child, m) => {
          const i = children.indexOf(child);
          if (i < 0) return;
          settle(i, m.ok ? { ok: true, value: m.value as T } : { ok: false, reason: m.reason === 'no-handler' ? 'no-handler' : 'error', error: String(m.error) });
        },
        gone: (child) => {
          const i = children.indexOf(child);
          if (i >= 0) settle(i, { ok: false, reason: 'exited', error: 'the worker exited before answering' });
        },
      });
      const request: SupervisorRequest = { bus: 'request', id, topic };
      children.forEach((child, i) => {
        try {
          child.send(request, (error) => {
            if (error) settle(i, { ok: false, reason: 'exited', error: `could not send the request: ${error.message}` });
          });
        } catch (error) {
          settle(i, { ok: false, reason: 'exited', error: `could not send the request: ${(error as Error).message}` });
        }
      });
    });
  };

  if (options.handleSignals ?? true) {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        forced = true;
        log.warn(`${signal} again: killing the workers now`);
        for (const slot of all()) kill(slot);
        return;
      }
      log.info(`${signal} received: draining the workers`);
      void stop().then((code) => {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        process.exit(code);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  return {
    ready,
    stopped,
    health: healthServers,
    workers: () => all().map(({ group, index, pid, status, restarts }) => ({ group, index, pid, status, restarts })),
    askWorkers,
    closeOnStop: (resource) => {
      if (typeof resource?.close !== 'function') new OptionReader('bus', 'closeOnStop').fail('resource', 'must have a close() method', resource);
      if (ownedClosed) void closeQuietly(resource);
      else owned.push(resource);
    },
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}

/** Something with a bounded `close()`, e.g. a `Bus`. */
export interface Closeable {
  close(): Promise<void>;
}

export interface CloseOnSignalsOptions {
  /**
   * Longest wait for `close()`; past it the process exits with code 1 (the supervisor would kill it
   * anyway). Make it longer than the modules' `drainTimeoutMs`. @default 15000
   */
  timeoutMs?: number;
  /** @default ['SIGTERM', 'SIGINT'] */
  signals?: readonly NodeJS.Signals[];
  /** Called first, when shutdown starts (e.g. to report not-ready). */
  onShutdown?: (reason: string) => void;
  /** Exits the process after closing (0, or 1 on timeout or error). @default process.exit */
  exit?: (code: number) => void;
  /** @default silentLogger */
  logger?: Logger;
}

/** What {@link closeOnSignals} returns. */
export interface ShutdownHandle {
  /** Starts the shutdown now, as a signal would. Idempotent. */
  shutdown(reason?: string): void;
  /** Removes the signal handlers (a shutdown already started goes on). */
  remove(): void;
}

/**
 * Installs the worker side of graceful shutdown: on SIGTERM or SIGINT (or when the supervisor's IPC
 * channel goes away, i.e. the parent died), calls `target.close()` — for a bus: stop fetching, let
 * running handlers finish within `drainTimeoutMs`, acknowledge, close pools — then exits 0. Bounded
 * by `timeoutMs`.
 */
export function closeOnSignals(target: Closeable, options: CloseOnSignalsOptions = {}): ShutdownHandle {
  const timeoutMs = new OptionReader('bus', 'closeOnSignals').int('timeoutMs', options.timeoutMs, 15_000, 0);
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const log = options.logger ?? silentLogger;
  let closing = false;
  const shutdown = (reason: string) => {
    if (closing) return;
    closing = true;
    options.onShutdown?.(reason);
    notifySupervisor('draining');
    log.info(`${reason}: draining`, { timeoutMs });
    const timer = setTimeout(() => {
      log.error(`close() did not finish within ${timeoutMs} ms; exiting with code 1`);
      exit(1);
    }, timeoutMs);
    target.close().then(
      () => {
        clearTimeout(timer);
        log.info('drained; exiting');
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(timer);
        log.error('close() failed; exiting with code 1', { error });
        exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => shutdown(`${signal} received`);
  const onDisconnect = () => shutdown('supervisor gone');
  for (const s of signals) process.on(s, onSignal);
  if (process.send) process.on('disconnect', onDisconnect);
  return {
    shutdown: (reason = 'shutdown requested') => shutdown(reason),
    remove: () => {
      for (const s of signals) process.off(s, onSignal);
      process.off('disconnect', onDisconnect);
    },
  };
}

/** Tells the supervisor (if this process has one) about this worker's state. No-op otherwise. */
export function notifySupervisor(state: WorkerMessage['state']): void {
  if (!process.send || !process.connected) return;
  const message: WorkerMessage = { bus: 'worker', state };
  try {
    process.send(message);
  } catch {
    // The channel closed in between: the parent is gone, and `closeOnSignals` handles that.
  }
}

/**
 * Whether this process is a worker started by {@link supervise} (it has the supervisor's IPC channel
 * and `BUS_WORKER_GROUP`). False in the `bus run` parent, in `bus run --inline`, in plain scripts.
 */
export function isSupervisedWorker(): boolean {
  return typeof process.send === 'function' && process.env[WORKER_ENV.group] !== undefined;
}

/** What a worker's {@link answerSupervisor} handler returns: a JSON-serializable value, or a promise of one. */
export type AnswerHandler = () => unknown;

const answerHandlers = new Map<string, AnswerHandler>();

const sendToSupervisor = (message: WorkerResponse): void => {
  if (!process.send || !process.connected) return;
  try {
    // With a callback, a channel that closed in between reports here instead of as an 'error' event.
    process.send(message, undefined, {}, () => {});
  } catch (error) {
    // Serialization failed (e.g. a circular value): the supervisor gets the reason rather than a timeout.
    if (message.ok) sendToSupervisor({ bus: 'response', id: message.id, ok: false, reason: 'error', error: `answer not serializable: ${(error as Error).message}` });
  }
};

const onSupervisorRequest = (message: unknown): void => {
  const m = message as Partial<SupervisorRequest> | null;
  if (m?.bus !== 'request' || typeof m.id !== 'number' || typeof m.topic !== 'string') return;
  const id = m.id;
  const handler = answerHandlers.get(m.topic);
  if (!handler) {
    sendToSupervisor({ bus: 'response', id, ok: false, reason: 'no-handler', error: `no handler for "${m.topic}" in worker pid ${process.pid}` });
    return;
  }
  Promise.resolve()
    .then(handler)
    .then(
      (value) => sendToSupervisor({ bus: 'response', id, ok: true, value }),
      (error: unknown) => sendToSupervisor({ bus: 'response', id, ok: false, reason: 'error', error: (error as Error)?.message ?? String(error) }),
    );
};

/**
 * The worker side of {@link Supervisor.askWorkers}: from now on, this worker answers the supervisor's
 * requests for `topic` with what `handler` returns (awaited; a throw or rejection is reported to the
 * supervisor as `error`). The value travels as JSON over the IPC channel.
 *
 * Outside a supervised worker (see {@link isSupervisedWorker}) it does nothing, so the same start-up
 * code runs in a single process too. While a handler is registered, the process listens on the IPC
 * channel (which keeps it referenced, as the supervisor's workers are anyway).
 *
 * @returns a function removing the handler (idempotent); the IPC listener goes with the last handler
 * @throws {ConfigError} when `topic` already has a handler in this process, or on invalid arguments
 */
export function answerSupervisor(topic: string, handler: AnswerHandler): () => void {
  const r = new OptionReader('bus', 'answerSupervisor');
  r.string('topic', topic);
  r.func('handler', handler);
  if (!isSupervisedWorker()) return () => {};
  if (answerHandlers.has(topic)) r.fail('topic', 'already has a handler in this process (remove it first)', topic);
  if (answerHandlers.size === 0) process.on('message', onSupervisorRequest);
  answerHandlers.set(topic, handler);
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    answerHandlers.delete(topic);
    if (answerHandlers.size === 0) process.off('message', onSupervisorRequest);
  };
}

/** What {@link runWorker} starts: a bus, or anything that starts (some modules) and closes. */
export interface Startable extends Closeable {
  start(options?: { modules?: readonly string[] }): Promise<void>;
}

export interface RunWorkerOptions extends Omit<CloseOnSignalsOptions, 'onShutdown'> {
  /** Modules to start. @default every registered module */
  modules?: readonly string[];
  /** Serve `/live` and `/ready` from this process (not needed under a supervisor that serves them). @default undefined */
  health?: HealthOptions;
}

/** A running worker. */
export interface WorkerHandle {
  /** The health server, when `health` was given. */
  health: HealthServer | undefined;
  /** Drains and exits, as on SIGTERM. */
  shutdown(): void;
}

/**
 * The worker side in one call: installs {@link closeOnSignals}, starts the modules, then reports
 * ready to the supervisor (and on `/ready`). A start that fails closes the bus and throws.
 *
 * ```ts
 * await runWorker(bus, { modules: [process.env.BUS_WORKER_GROUP!], timeoutMs: 15_000 });
 * ```
 */
export async function runWorker(bus: Startable, options: RunWorkerOptions = {}): Promise<WorkerHandle> {
  let state: 'starting' | 'ready' | 'draining' = 'starting';
  // Read through a function: the signal handler changes `state` behind TypeScript's narrowing.
  const draining = () => state === 'draining';
  const health = options.health
    ? await healthServer({ ...options.health, check: () => ({ ready: state === 'ready', detail: { status: state, pid: process.pid } }) })
    : undefined;
  const target: Closeable = {
    close: async () => {
      try {
        await bus.close();
      } finally {
        await health?.close();
      }
    },
  };
  const handle = closeOnSignals(target, {
    ...options,
    onShutdown: () => {
      state = 'draining';
    },
  });
  try {
    await bus.start(options.modules ? { modules: options.modules } : {});
  } catch (error) {
    // A signal during start-up: the shutdown under way owns the exit, start's error is its echo.
    if (draining()) return { health, shutdown: () => handle.shutdown('shutdown()') };
    handle.remove();
    await target.close().catch(() => {});
    throw error;
  }
  if (state === 'starting') {
    state = 'ready';
    notifySupervisor('ready');
  }
  return { health, shutdown: () => handle.shutdown('shutdown()') };
}

export interface HealthOptions {
  /** TCP port; 0 picks a free one (see {@link HealthServer.port}). */
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
}

export interface HealthServer {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

/**
 * A tiny HTTP server: `GET /live` answers 200 while the process runs; `GET /ready` answers 200 when
 * `check().ready` (subscribed) and 503 otherwise (starting, draining), with `check().detail` as JSON.
 * Listens eagerly; resolves once bound.
 */
export function healthServer(options: HealthOptions & { check: () => { ready: boolean; detail?: unknown } }): Promise<HealthServer> {
  const r = new OptionReader('bus', 'health');
  const port = r.int('port', options.port, 0, 0, 65535);
  const host = r.string('host', options.host, '127.0.0.1');
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(`${JSON.stringify(body)}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'method not allowed' });
    if (path === '/live' || path === '/healthz') return send(200, { status: 'live', pid: process.pid });
    if (path === '/ready' || path === '/readyz') {
      let result: { ready: boolean; detail?: unknown };
      try {
        result = options.check();
      } catch (error) {
        result = { ready: false, detail: { error: (error as Error).message } };
      }
      return send(result.ready ? 200 : 503, { status: result.ready ? 'ready' : 'not ready', ...(result.detail === undefined ? {} : { detail: result.detail }) });
    }
    send(404, { error: 'not found; try /live or /ready' });
  });
  // Health must never keep a draining process alive.
  server.unref();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      let closing: Promise<void> | undefined;
      resolve({
        port: (server.address() as AddressInfo).port,
        host,
        close: () => {
          closing ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}
