import { type ChildProcess, fork } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { type Logger, MODULE_DEFAULTS, OptionReader, silentLogger } from '@bus/core';
import { defaultKillTimeoutMs } from './budget.js';
import { type HealthOptions, type HealthServer, healthServer } from './health.js';
import { type AskFailure, type AskWorkersOptions, type SupervisorRequest, WORKER_ENV, type WorkerMessage, type WorkerReply, type WorkerResponse } from './ipc.js';
import { type Closeable, takeOverSignals } from './signals.js';

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
   * module's `drainTimeoutMs` plus the worker's own close: see {@link defaultKillTimeoutMs}.
   * @default 25000 (`defaultKillTimeoutMs` of the default `drainTimeoutMs`, 10000)
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
  const r: OptionReader = new OptionReader('bus/runtime', 'supervise');
  r.closed(r.object('options', options), ['script', 'args', 'execArgv', 'env', 'cwd', 'groups', 'logger', 'handleSignals']);
  const script = r.string('script', options.script);
  const baseArgs = options.args ?? [];
  const execArgv = options.execArgv ?? process.execArgv;
  const log = (options.logger ?? silentLogger).child({ component: 'supervisor' });
  const rawGroups = options.groups as unknown;
  if (!Array.isArray(rawGroups) || rawGroups.length === 0) r.fail('groups', 'must be a non-empty array', rawGroups);
  const groups: ResolvedGroup[] = (rawGroups as WorkerGroupOptions[]).map((g, i) => {
    const gr = r.at(`groups[${i}]`);
    gr.closed(gr.object('<group>', g), ['name', 'processes', 'args', 'env', 'restartDelayMs', 'maxRestartDelayMs', 'stableAfterMs', 'killTimeoutMs', 'health']);
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
      killTimeoutMs: gr.int('killTimeoutMs', g.killTimeoutMs, defaultKillTimeoutMs(MODULE_DEFAULTS.drainTimeoutMs), 0),
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
  // The exit code of a stop forced by a second signal (128 + the signal's number).
  let forced: number | undefined;
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
          if (stoppedCleanly(code, signal)) log.info(`worker ${worker} (pid ${child.pid}) ${how}`, fields);
          else log.warn(`worker ${worker} (pid ${child.pid}) ${how} while stopping`, fields);
          slot.crashes = stoppedCleanly(code, signal) ? 0 : slot.crashes + 1;
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
      rejectReady(new Error('[bus/runtime] supervisor stopped before every worker was ready'));
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
          if (forced !== undefined) kill(slot);
          await new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) resolve();
            else child.once('exit', () => resolve());
          });
          clearTimeout(timer);
          if (!stoppedCleanly(child.exitCode, child.signalCode)) code = 1;
        }),
      );
      await Promise.allSettled([...healthServers.values()].map((s) => s.close()));
      ownedClosed = true;
      await Promise.all(owned.splice(0).map(closeQuietly));
      if (forced !== undefined) code = forced;
      log.info('all workers stopped', { exitCode: code });
      return code;
    })();
    void stopping.then(resolveStopped);
    return stopping;
  };

  const askWorkers = <T>(topic: string, askOptions: AskWorkersOptions = {}): Promise<WorkerReply<T>[]> => {
    const ar = new OptionReader('bus/runtime', 'askWorkers');
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
        if (forced !== undefined) return;
        forced = 128 + (osConstants.signals[signal] ?? 15);
        const running = all().filter((s) => s.child && s.child.exitCode === null && s.child.signalCode === null);
        log.warn(
          `${signal} again: not waiting for the drain; killing ${running.length} worker(s) now (SIGKILL) and exiting with code ${forced}. ` +
            'The broker will deliver their unacknowledged messages again.',
          { signal, exitCode: forced, workers: running.length },
        );
        for (const slot of running) kill(slot);
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
    takeOverSignals();
  }

  return {
    ready,
    stopped,
    health: healthServers,
    workers: () => all().map(({ group, index, pid, status, restarts }) => ({ group, index, pid, status, restarts })),
    askWorkers,
    closeOnStop: (resource) => {
      if (typeof resource?.close !== 'function') new OptionReader('bus/runtime', 'closeOnStop').fail('resource', 'must have a close() method', resource);
      if (ownedClosed) void closeQuietly(resource);
      else owned.push(resource);
    },
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}


/**
 * Whether a worker that exited while the supervisor was stopping it went the way it was asked to:
 * exit code 0 (drained), or death by SIGTERM / SIGINT — the supervisor's own stop signal (or the
 * terminal's Ctrl-C), which reaches a worker that is still booting, before it installed a handler.
 * Such a worker had nothing to drain yet. SIGKILL (kill timeout, forced stop) and other codes are not clean.
 */
function stoppedCleanly(code: number | null, signal: NodeJS.Signals | null): boolean {
  return code === 0 || signal === 'SIGTERM' || signal === 'SIGINT';
}
