import { type Logger, silentLogger } from '@bus/core';
import { type HealthOptions, type HealthServer, healthServer } from './health.js';
import { notifySupervisor } from './ipc.js';
import { type Closeable, type CloseOnSignalsOptions, closeOnSignals } from './signals.js';

/** What {@link runWorker} starts: a bus, or anything that starts (some modules) and closes. */
export interface Startable extends Closeable {
  start(options?: { modules?: readonly string[] }): Promise<void>;
}

/** A health server of {@link runWorker}: ready once `modules` (default: all it starts) are started. */
export interface WorkerHealthOptions extends HealthOptions {
  /**
   * The modules (of {@link RunWorkerOptions.modules}) whose start makes this server answer 200 on
   * `/ready`. @default every module the worker starts
   */
  modules?: readonly string[];
}

export interface RunWorkerOptions extends Omit<CloseOnSignalsOptions, 'onShutdown'> {
  /**
   * Modules to start, one after the other in this order (each logged once started, or when it fails).
   * @default every registered module, in one `start()`
   */
  modules?: readonly string[];
  /**
   * Serve `/live` and `/ready` from this process (not needed under a supervisor that serves them):
   * one server, or one per entry (e.g. one per module). @default undefined
   */
  health?: WorkerHealthOptions | readonly WorkerHealthOptions[];
  /**
   * Runs once the signal handlers are in place and before the modules start (e.g. a config's
   * `worker` hook). What it returns is closed after the bus on shutdown. If it throws, the bus is
   * closed and `runWorker` rejects with its error. @default undefined
   */
  setup?: () => Closeable | undefined | Promise<Closeable | undefined>;
}

/** A running worker. */
export interface WorkerHandle {
  /** The first health server, when `health` was given. */
  health: HealthServer | undefined;
  /** Drains and exits, as on SIGTERM. */
  shutdown(): void;
}

/**
 * The worker side in one call, and the one implementation of a worker's lifecycle (`bus run` workers
 * and `bus run --inline` use it too). In this order:
 * 1. installs {@link closeOnSignals} first, so a SIGTERM at any later moment drains and exits 0
 *    (a signal while connecting stops the start quietly);
 * 2. binds the health servers (`/ready` 503 until started, and again while draining);
 * 3. runs `setup`;
 * 4. starts the modules, then reports ready to the supervisor (and on `/ready`);
 * 5. keeps the process alive until the shutdown, which closes the bus, then what `setup` returned,
 *    then the health servers, and exits.
 *
 * A start (or `setup`) that fails — not because of a shutdown — closes everything, removes the signal
 * handlers and rejects.
 *
 * ```ts
 * await runWorker(bus, { modules: [process.env.BUS_WORKER_GROUP!], timeoutMs: 15_000 });
 * ```
 */
export async function runWorker(bus: Startable, options: RunWorkerOptions = {}): Promise<WorkerHandle> {
  const log: Logger = options.logger ?? silentLogger;
  const modules = options.modules;
  const started = new Set<string>();
  let state: 'starting' | 'ready' | 'draining' = 'starting';
  // Read through a function: the signal handler changes `state` behind TypeScript's narrowing.
  const draining = () => state === 'draining';
  const servers: HealthServer[] = [];
  const owned: Closeable[] = [];
  // A worker runs until it is told to stop, whether or not its transports hold the event loop open.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const closeRest = async () => {
    clearInterval(keepAlive);
    await Promise.allSettled(owned.splice(0).map((r) => r.close()));
    await Promise.allSettled(servers.map((s) => s.close()));
  };
  const target: Closeable = {
    close: async () => {
      try {
        await bus.close();
      } finally {
        await closeRest();
      }
    },
  };
  const { onShutdown: _ignored, ...closeOptions } = options as CloseOnSignalsOptions & RunWorkerOptions;
  const handle = closeOnSignals(target, {
    ...closeOptions,
    onShutdown: () => {
      state = 'draining';
    },
  });
  const result = (): WorkerHandle => ({ health: servers[0], shutdown: () => handle.shutdown('shutdown()') });
  const fail = async (error: unknown): Promise<never> => {
    handle.remove();
    await target.close().catch(() => {});
    throw error;
  };

  const healthList = options.health === undefined ? [] : Array.isArray(options.health) ? options.health : [options.health as WorkerHealthOptions];
  for (const h of healthList as readonly WorkerHealthOptions[]) {
    const { modules: watched, ...listen } = h;
    const isReady = () => (watched && modules ? watched.every((m) => started.has(m)) : state === 'ready');
    try {
      const server = await healthServer({
        ...listen,
        check: () => ({ ready: !draining() && isReady(), detail: { status: draining() ? 'draining' : isReady() ? 'ready' : 'starting', pid: process.pid, ...(watched ? { modules: watched } : {}) } }),
      });
      servers.push(server);
      log.info(`health${watched ? ` of ${watched.join(', ')}` : ''} on http://${server.host}:${server.port}/ready`, { port: server.port });
    } catch (error) {
      if (draining()) return result();
      return fail(error);
    }
  }

  if (options.setup) {
    try {
      const resource = await options.setup();
      // A shutdown that began during setup has closed what it knew of: close this one too.
      if (resource && draining()) await resource.close().catch(() => {});
      else if (resource) owned.push(resource);
    } catch (error) {
      if (draining()) return result();
      return fail(error);
    }
  }

  try {
    if (!modules) await bus.start({});
    for (const name of modules ?? []) {
      if (draining()) break;
      try {
        await bus.start({ modules: [name] });
      } catch (error) {
        if (!draining()) log.error(`module ${name} failed to start: ${(error as Error)?.message ?? error}`, { module: name, error });
        throw error;
      }
      started.add(name);
      log.info(`module ${name} started`, { module: name });
    }
  } catch (error) {
    // A signal during start-up: the shutdown under way owns the exit, start's error is its echo.
    if (draining()) return result();
    return fail(error);
  }
  if (state === 'starting') {
    state = 'ready';
    notifySupervisor('ready');
  }
  return result();
}
