/// <reference path="./kafkajs-internal.d.ts" />
/**
 * kafkajs 2.2.4 (its last release, February 2023) schedules a check of its request queue at
 * `throttledUntil - Date.now()`, and `throttledUntil` is -1 until a broker throttles: a negative delay.
 * Node.js 24 and later print a `TimeoutNegativeWarning` for it (Node treated it as 1 ms before, and
 * still does), so every process that fetched from Kafka wrote a warning to stderr. This replaces that
 * one method with the same logic and a delay of at least 1 ms — the delay Node used all along — and
 * only when the method is still the one described here (a kafkajs release that changed it is left alone).
 */
import RequestQueue from 'kafkajs/src/network/requestQueue/index.js';

/** kafkajs's own interval for a queue with pending requests and no throttle. */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;

interface QueueState {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
}

let applied = false;

/** Applies the fix once; true when kafkajs's method was replaced (now or by an earlier call). */
export function fixKafkajsNegativeTimeout(): boolean {
  if (applied) return true;
  const proto = (RequestQueue as { prototype?: Record<string, unknown> } | undefined)?.prototype;
  const original = proto?.scheduleCheckPendingRequests;
  if (typeof original !== 'function' || !/this\.throttledUntil - Date\.now\(\)/.test(String(original))) return false;
  (proto as Record<string, unknown>).scheduleCheckPendingRequests = function scheduleCheckPendingRequests(this: QueueState) {
    let scheduleAt = this.throttledUntil - Date.now();
    if (!this.throttleCheckTimeoutId) {
      if (this.pending.length > 0) scheduleAt = scheduleAt > 0 ? scheduleAt : CHECK_PENDING_REQUESTS_INTERVAL;
      this.throttleCheckTimeoutId = setTimeout(
        () => {
          this.throttleCheckTimeoutId = null;
          this.checkPendingRequests();
        },
        Math.max(1, scheduleAt),
      );
    }
  };
  applied = true;
  return true;
}
