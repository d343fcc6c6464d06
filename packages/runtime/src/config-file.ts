import {
  type Bus,
  type BusOptions,
  busOptionsSchema,
  createBus,
  type EventMap,
  type Logger,
  MODULE_DEFAULTS,
  type ModuleDefinition,
  moduleSchema,
  OptionReader,
} from '@bus/core';
import { rejectUnknownKeys } from '@bus/core/kit';
import { defaultKillTimeoutMs } from './budget.js';
import type { HealthOptions } from './health.js';
import type { Closeable } from './signals.js';
import type { Supervisor } from './supervise.js';

/**
 * A module in a config file: its {@link ModuleDefinition} plus how it runs as processes (how many,
 * and how soon a dead one is restarted).
 */
export interface ModuleConfig<M extends EventMap = EventMap> extends ModuleDefinition<M> {
  /** Worker processes running this module under `bus run`. @default 1 */
  processes?: number;
  /** Wait before a dead worker is started again, in ms. @default 1000 */
  restartDelayMs?: number;
  /** Longest restart delay of a crash-looping worker (the delay doubles per crash), in ms. @default 30000 */
  maxRestartDelayMs?: number;
  /**
   * After SIGTERM, how long a worker may drain before it is killed (SIGKILL), in ms.
   * @default drainTimeoutMs + 3 × DRAIN_SLACK_MS (see {@link defaultKillTimeoutMs})
   */
  killTimeoutMs?: number;
  /** Serve `GET /live` and `GET /ready` for this module on this port. @default undefined (no server) */
  health?: HealthOptions;
}

/** What a config hook returns: something to close on shutdown, or nothing (possibly as a promise). */
export type HookResult = Closeable | void | Promise<Closeable | void>;

/**
 * A config's code for the `bus run` parent (the supervisor process), e.g. one metrics endpoint for all
 * workers: `supervisor: (s) => supervisorMetricsServer(s, { port: 9464 })` (`@bus/prometheus`).
 * Runs once, right after the workers are forked. What it returns (anything with `close()`) is closed
 * when the supervisor stops, after the workers are gone. If it throws, `bus run` stops the workers
 * and fails.
 */
export type SupervisorHook = (supervisor: Supervisor) => HookResult;

/** What a {@link WorkerHook} gets. */
export interface WorkerHookContext {
  /** The modules this process is about to start. */
  modules: readonly string[];
  /** True in a worker of `bus run`, false with `bus run --inline` (no supervisor to talk to). */
  supervised: boolean;
  /** The process's logger (bound to module, worker and pid in a worker). */
  logger: Logger;
}

/**
 * A config's code for each process that runs modules (every `bus run` worker, and `bus run --inline`),
 * e.g. `worker: () => void exposeToSupervisor()` (`@bus/prometheus`). Runs once, before the modules
 * start. What it returns (anything with `close()`) is closed after the bus, on shutdown. If it throws,
 * the process fails to start (a worker is restarted like one that crashed).
 */
export type WorkerHook = (context: WorkerHookContext) => HookResult;

/**
 * Everything `bus.config.ts` declares: the bus's options (transports as factory instances, default
 * transport, codec, metrics, tracing, logger), the modules, and code for the processes `bus run` starts.
 */
export interface BusConfig<M extends EventMap = EventMap> extends BusOptions {
  /** @default [] */
  modules?: readonly ModuleConfig<M>[];
  /** Runs in the `bus run` parent; see {@link SupervisorHook}. @default undefined */
  supervisor?: SupervisorHook;
  /** Runs in each process that runs modules; see {@link WorkerHook}. @default undefined */
  worker?: WorkerHook;
}

/** A config object, or a (possibly async) function returning one, called once per process. */
export type BusConfigInput<M extends EventMap = EventMap> = BusConfig<M> | (() => BusConfig<M> | Promise<BusConfig<M>>);

/**
 * Types a config file. Export its result as the default export of `bus.config.ts` (or `.js`/`.mjs`):
 *
 * ```ts
 * import { defineConfig } from '@bus/runtime';
 * import { redisStream } from '@bus/redis-stream';
 *
 * export default defineConfig<LiveEvents>({
 *   transports: { redis: redisStream({ url: process.env.REDIS_URL }) },
 *   modules: [{ name: 'tasks', processes: 2, consumers: { ... }, handler: async (ctx) => { ... } }],
 * });
 * ```
 *
 * Each process that loads the file (the `bus run` parent, every worker, `bus publish`…) evaluates it
 * once, so transports are created per process; they connect lazily.
 */
export function defineConfig<M extends EventMap = EventMap>(config: BusConfig<M>): BusConfig<M>;
export function defineConfig<M extends EventMap = EventMap>(
  config: () => BusConfig<M> | Promise<BusConfig<M>>,
): () => BusConfig<M> | Promise<BusConfig<M>>;
export function defineConfig<M extends EventMap = EventMap>(config: BusConfigInput<M>): BusConfigInput<M> {
  return config;
}

/** A module's process settings, validated, with defaults filled in. */
export interface ModuleProcessSettings {
  name: string;
  processes: number;
  restartDelayMs: number;
  maxRestartDelayMs: number;
  killTimeoutMs: number;
  /** The module's handler drain deadline (`drainTimeoutMs`). */
  drainTimeoutMs: number;
  health: HealthOptions | undefined;
}

/** A config with its process settings checked. */
export interface ResolvedConfig<M extends EventMap = EventMap> {
  config: BusConfig<M>;
  modules: ModuleProcessSettings[];
}

/**
 * Evaluates a config (calls it when it is a function; accepts a module namespace with a `default`
 * export) and checks what the bus itself does not: `modules` and their process settings, and that
 * the `supervisor` and `worker` hooks are functions. Errors are
 * `ConfigError`s naming the key, e.g. `[bus/runtime] config.modules[0].processes must be …`.
 */
export async function resolveConfig<M extends EventMap = EventMap>(input: BusConfigInput<M> | { default: BusConfigInput<M> }): Promise<ResolvedConfig<M>> {
  const r: OptionReader = new OptionReader('bus/runtime', 'config');
  let value: unknown = input;
  // `export default defineConfig(...)` loaded as CJS, or through a loader, may arrive wrapped once or twice.
  for (let i = 0; i < 2 && isObject(value) && 'default' in value && !('transports' in value); i++) value = value.default;
  if (typeof value === 'function') value = await (value as () => unknown)();
  const config = r.object('<root>', value) as unknown as BusConfig<M>;
  // Closed sets: a misspelt key fails here, in the supervisor, before any worker starts.
  rejectUnknownKeys(config as unknown as Record<string, unknown>, [...(busOptionsSchema.keys ?? []), ...CONFIG_KEYS], { source: 'bus/runtime', path: 'config' });
  r.object('transports', config.transports);
  r.func('supervisor', config.supervisor, true);
  r.func('worker', config.worker, true);
  const rawModules: unknown = config.modules ?? [];
  if (!Array.isArray(rawModules)) r.fail('modules', 'must be an array of modules', rawModules);
  const names = new Set<string>();
  const modules = (rawModules as ModuleConfig<M>[]).map((m, i) => {
    const mr = r.at(`modules[${i}]`);
    mr.object('<module>', m);
    rejectUnknownKeys(m as unknown as Record<string, unknown>, [...(moduleSchema.keys ?? []), ...PROCESS_KEYS], { source: 'bus/runtime', path: `config.modules[${i}]` });
    const name = mr.string('name', m.name);
    if (names.has(name)) mr.fail('name', 'is used by two modules', name);
    names.add(name);
    const drainTimeoutMs = mr.int('drainTimeoutMs', m.drainTimeoutMs, MODULE_DEFAULTS.drainTimeoutMs, 0);
    const restartDelayMs = mr.int('restartDelayMs', m.restartDelayMs, 1000, 0);
    const health = mr.object('health', m.health, true) as HealthOptions | undefined;
    if (health) {
      if (health.port === undefined) mr.at('health').fail('port', 'must be set (0 picks a free port)', undefined);
      mr.at('health').int('port', health.port, 0, 0, 65535);
      mr.at('health').optionalString('host', health.host);
    }
    return {
      name,
      processes: mr.int('processes', m.processes, 1, 1, 1024),
      restartDelayMs,
      maxRestartDelayMs: mr.int('maxRestartDelayMs', m.maxRestartDelayMs, Math.max(30_000, restartDelayMs), restartDelayMs),
      killTimeoutMs: mr.int('killTimeoutMs', m.killTimeoutMs, defaultKillTimeoutMs(drainTimeoutMs), 0),
      drainTimeoutMs,
      health,
    };
  });
  return { config, modules };
}

const PROCESS_KEYS = ['processes', 'restartDelayMs', 'maxRestartDelayMs', 'killTimeoutMs', 'health'] as const;
const CONFIG_KEYS = ['modules', 'supervisor', 'worker'] as const;

/**
 * Creates the bus a config describes and registers all its modules (validated at once); start some
 * with `bus.start({ modules })`. Connects lazily, like `createBus`. The `supervisor` and `worker`
 * hooks are not run (that is `bus run`'s job).
 */
export function createBusFromConfig<M extends EventMap = EventMap>(config: BusConfig<M>): Bus<M> {
  const { modules = [], supervisor: _supervisor, worker: _worker, ...options } = config;
  const bus = createBus<M>(options);
  for (const m of modules) {
    const definition: Record<string, unknown> = { ...m };
    for (const key of PROCESS_KEYS) delete definition[key];
    bus.module(definition as unknown as ModuleDefinition<M>);
  }
  return bus;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
