/**
 * The IPC protocol between the supervisor ({@link supervise}) and its workers, over the fork IPC
 * channel, with namespaced messages: `{bus: 'worker'}` (a worker's state), and `{bus: 'request'}` /
 * `{bus: 'response'}` with an id for {@link Supervisor.askWorkers} / {@link answerSupervisor} (e.g.
 * collecting every worker's metrics).
 */
import { OptionReader } from '@bus/core';
import type { WorkerInfo } from './supervise.js';

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
  const r = new OptionReader('bus/runtime', 'answerSupervisor');
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

