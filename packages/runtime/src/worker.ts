import { type HealthOptions, type HealthServer, healthServer } from './health.js';
import { notifySupervisor } from './ipc.js';
import { type Closeable, type CloseOnSignalsOptions, closeOnSignals } from './signals.js';

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

