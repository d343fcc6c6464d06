import { OptionReader, type Logger, silentLogger } from '@bus/core';
import { notifySupervisor } from './ipc.js';

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
  const timeoutMs = new OptionReader('bus/runtime', 'closeOnSignals').int('timeoutMs', options.timeoutMs, 15_000, 0);
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

