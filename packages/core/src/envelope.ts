/** Headers of a message: W3C trace context, user headers and the codec's own attributes. */
export type Headers = Record<string, string>;

/**
 * What the application publishes and handles, independent of any transport.
 *
 * @typeParam E - event name
 * @typeParam P - payload type
 */
export interface Envelope<E extends string = string, P = unknown> {
  /** Unique, time-sortable id (UUIDv7), assigned on publish. */
  id: string;
  event: E;
  payload: P;
  /** Unix time in milliseconds when the producer published the message. */
  publishedAt: number;
  /** User headers and trace context (`traceparent`, `tracestate`, `baggage`). */
  headers: Headers;
  /** Partition / ordering key. Messages with the same key keep their order. */
  key?: string;
  /** Name of the producing application, if configured. */
  source?: string;
}

/**
 * The bytes a transport stores and carries: what a {@link Codec} makes of an {@link Envelope}.
 * A transport maps it onto the broker's native record (Kafka key/value/headers, Redis stream fields).
 */
export interface WireRecord {
  key?: string;
  /** Encoded payload. Transports may hand strings to the codec to save a copy. */
  value: Uint8Array | string;
  headers: Headers;
}
