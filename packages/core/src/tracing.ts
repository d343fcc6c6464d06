import type { Headers } from './envelope.js';

export interface PublishTraceInfo {
  transport: string;
  topic: string;
  /** Events of the batch, one per message. */
  events: readonly string[];
  /** Message ids of the batch. */
  messageIds: readonly string[];
}

export interface ProcessTraceInfo {
  transport: string;
  topic: string;
  event: string;
  messageId: string;
  group: string;
  module: string;
  consumer: string;
  batchSize: number;
  deliveryCount: number;
  /** Headers of the received message (trace context is extracted from them). */
  headers: Readonly<Headers>;
}

/**
 * Tracing hooks. `publish` wraps the sending of a batch and writes trace context into each message's
 * headers (`carriers`, mutable); `process` wraps one handled message in the context extracted from its
 * headers. The default ({@link noopTracing}) only calls `fn`.
 */
export interface Tracing {
  publish<T>(info: PublishTraceInfo, carriers: Headers[], fn: () => Promise<T>): Promise<T>;
  process<T>(info: ProcessTraceInfo, fn: () => Promise<T>): Promise<T>;
}

export const noopTracing: Tracing = {
  publish: (_info, _carriers, fn) => fn(),
  process: (_info, fn) => fn(),
};
