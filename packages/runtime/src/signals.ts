import { type Logger, MODULE_DEFAULTS, OptionReader, silentLogger } from '@bus/core';
import { workerCloseTimeoutMs } from './budget.js';
import { notifySupervisor } from './ipc.js';

/** Something with a bounded `close()`, e.g. a `Bus`. */
export interface Closeable {
  close(): Promise<void>;
}

export interface CloseOnSignalsOptions {
  /**
   * Longest wait for `close()`; past it the process exits with code 1 (the supervisor would kill it
   * anyway). Make it longer than the modules' `drainTimeoutMs`: see {@link workerCloseTimeoutMs}.
   * @default 20000 (`workerCloseTimeoutMs` of the default `drainTimeoutMs`, 10000)
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
  const timeoutMs = new OptionReader('bus/runtime', 'closeOnSignals').int('timeoutMs', options.timeoutMs, workerCloseTimeoutMs(MODULE_DEFAULTS.drainTimeoutMs), 0);
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
  takeOverSignals();
  if (process.send) process.on('disconnect', onDisconnect);
  return {
    shutdown: (reason = 'shutdown requested') => shutdown(reason),
    remove: () => {
      for (const s of signals) process.off(s, onSignal);
      process.off('disconnect', onDisconnect);
    },
  };
}


/** The handlers of {@link exitOnEarlySignals} while they are installed. */
let early: { signals: readonly NodeJS.Signals[]; handler: (signal: NodeJS.Signals) => void } | undefined;

/** Options of {@link exitOnEarlySignals}. */
export interface EarlySignalsOptions {
  /** Exit code of a process stopped before it started anything. @default 0 */
  code?: number;
  /** @default ['SIGTERM', 'SIGINT'] */
  signals?: readonly NodeJS.Signals[];
  /** Called with the signal just before exiting (e.g. to log a line). @default undefined */
  onSignal?: (signal: NodeJS.Signals) => void;
  /** @default process.exit */
  exit?: (code: number) => void;
}

/**
 * Makes a stop request that comes while a process is still starting (loading its config, importing
 * its transports) a clean exit: until a real handler takes over, SIGTERM or SIGINT end the process at
 * once with `code` (0) instead of Node's default death by signal — which a supervisor would count as
 * a crash. Nothing needs draining yet, so exiting at once is right. Call it first thing in an entry
 * script; {@link closeOnSignals} and {@link supervise} (with `handleSignals`) remove it when they
 * install their own handlers, so there is never a moment without a handler nor one with two.
 * Idempotent.
 *
 * @returns a function removing the handlers (idempotent)
 */
export function exitOnEarlySignals(options: EarlySignalsOptions = {}): () => void {
  if (early) return takeOverSignals;
  const code = new OptionReader('bus/runtime', 'exitOnEarlySignals').int('code', options.code, 0, 0, 255);
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? ((c: number) => process.exit(c));
  const handler = (signal: NodeJS.Signals) => {
    options.onSignal?.(signal);
    exit(code);
  };
  early = { signals, handler };
  for (const s of signals) process.on(s, handler);
  return takeOverSignals;
}

/** Removes the handlers of {@link exitOnEarlySignals}, if any: a real shutdown handler is in place. */
export function takeOverSignals(): void {
  if (!early) return;
  for (const s of early.signals) process.off(s, early.handler);
  early = undefined;
}
