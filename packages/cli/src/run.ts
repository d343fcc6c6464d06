import { ConfigError, consoleLogger, type Logger } from '@bus/core';
import { type Closeable, createBusFromConfig, runWorker, type Supervisor, supervise, WORKER_ENV, workerCloseTimeoutMs } from '@bus/runtime';
import { defaultBin } from './bin-path.js';
import { type LoadedConfig, loadConfig } from './load.js';
import { type LogLevel, UsageError } from './usage.js';

export interface RunModulesOptions {
  /** Config file; see {@link loadConfig}. @default $BUS_CONFIG or bus.config.* in `cwd` */
  config?: string;
  /** @default process.cwd() */
  cwd?: string;
  /** Modules to run. @default every module of the config */
  modules?: readonly string[];
  /** Supervisor log. @default the config's logger, else JSON lines on stderr at `logLevel` */
  logger?: Logger;
  /** @default 'info' */
  logLevel?: LogLevel;
  /** Drain on SIGTERM / SIGINT and exit with the supervisor's code. @default true */
  handleSignals?: boolean;
  /** The `bus` script the workers run. @default this package's bin */
  bin?: string;
  /** Node flags of the workers. @default process.execArgv */
  execArgv?: readonly string[];
}

/**
 * Starts the config's modules as supervised worker processes: `processes` workers per module, each
 * running `bus run --worker --module <name>`; restarted after `restartDelayMs` (with back-off) when
 * they die; drained on `stop()` (or SIGTERM / SIGINT). Health endpoints, when a module declares
 * `health`, are served by this (parent) process. Then runs the config's `supervisor` hook with the
 * supervisor (what it returns is closed when the supervisor stops; if it throws, the workers are
 * stopped and this rejects). Resolves once the workers are forked; await `supervisor.ready` for
 * their subscriptions.
 */
export async function runModules(options: RunModulesOptions = {}): Promise<Supervisor> {
  const loaded = await loadConfig(options.config, options.cwd);
  const names = selectModules(loaded, options.modules);
  const level = options.logLevel ?? 'info';
  const logger = options.logger ?? loaded.config.logger ?? consoleLogger(level);
  // The parent only reads the settings: it never connects, so the (lazy) transports can go.
  await Promise.allSettled(Object.values(loaded.config.transports).map((t) => t.close()));
  const bin = options.bin ?? defaultBin();
  const supervisor = supervise({
    script: bin,
    ...(options.execArgv ? { execArgv: options.execArgv } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    logger,
    handleSignals: options.handleSignals ?? true,
    groups: loaded.modules
      .filter((m) => names.includes(m.name))
      .map((m) => ({
        name: m.name,
        processes: m.processes,
        restartDelayMs: m.restartDelayMs,
        maxRestartDelayMs: m.maxRestartDelayMs,
        killTimeoutMs: m.killTimeoutMs,
        ...(m.health ? { health: m.health } : {}),
        args: ['run', '--worker', '--config', loaded.path, '--module', m.name, '--log-level', level],
      })),
  });
  const hook = loaded.config.supervisor;
  if (hook) {
    try {
      const resource = checkHookResult('supervisor', await hook(supervisor));
      if (resource) supervisor.closeOnStop(resource);
    } catch (error) {
      await supervisor.stop();
      throw new Error(`[bus/cli] the config's supervisor hook failed: ${(error as Error)?.message ?? error}`, { cause: error });
    }
  }
  return supervisor;
}

/** A hook may return nothing or something to close; anything else is a mistake worth naming. */
function checkHookResult(hook: 'supervisor' | 'worker', value: unknown): Closeable | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof (value as Partial<Closeable>).close !== 'function') {
    throw new ConfigError(`config.${hook}()`, 'must return nothing or an object with a close() method', value, 'bus/cli');
  }
  return value as Closeable;
}

/** The module names to run: all, or the ones asked for (each must exist). */
export function selectModules(loaded: LoadedConfig, wanted: readonly string[] | undefined): string[] {
  const all = loaded.modules.map((m) => m.name);
  if (all.length === 0) throw new Error(`[bus/cli] ${loaded.path} declares no modules`);
  if (!wanted || wanted.length === 0) return all;
  const names = wanted.flatMap((w) => w.split(',')).map((w) => w.trim()).filter(Boolean);
  for (const name of names) {
    if (!all.includes(name)) throw new UsageError(`no module "${name}" in ${loaded.path} (modules: ${all.join(', ')})`, 'run');
  }
  return names;
}

/**
 * Runs modules in this process (`bus run --inline`, and each worker of `bus run`) with
 * {@link runWorker}: signal handlers first, then (inline only) the modules' health servers, the
 * config's `worker` hook, the modules one after the other, ready to the supervisor; drains on
 * SIGTERM / SIGINT (closing what the hook returned after the bus), then exits.
 * Never resolves while running; resolves 1 when the hook or a module fails to start.
 */
export async function runInline(loaded: LoadedConfig, names: readonly string[], options: { worker: boolean; logLevel: LogLevel }): Promise<number> {
  const base = loaded.config.logger ?? consoleLogger(options.logLevel);
  const logger = options.worker
    ? base.child({ module: process.env[WORKER_ENV.group], worker: Number(process.env[WORKER_ENV.index] ?? 0), pid: process.pid })
    : base;
  const bus = createBusFromConfig({ ...loaded.config, logger });
  const selected = loaded.modules.filter((m) => names.includes(m.name));
  const drainTimeoutMs = Math.max(...selected.map((m) => m.drainTimeoutMs));
  const hook = loaded.config.worker;
  try {
    await runWorker(bus, {
      modules: names,
      timeoutMs: workerCloseTimeoutMs(drainTimeoutMs),
      logger,
      // Under a supervisor, the parent serves the module's health (it knows every worker).
      ...(options.worker ? {} : { health: selected.flatMap((m) => (m.health ? [{ ...m.health, modules: [m.name] }] : [])) }),
      ...(hook
        ? {
            setup: async () => {
              try {
                return checkHookResult('worker', await hook({ modules: names, supervised: options.worker, logger }));
              } catch (error) {
                logger.error(`the config's worker hook failed: ${(error as Error)?.message ?? error}`, { error });
                throw error;
              }
            },
          }
        : {}),
    });
  } catch {
    return 1;
  }
  return new Promise<number>(() => {});
}
