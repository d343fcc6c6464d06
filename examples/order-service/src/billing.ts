import { defineModule, type IdempotencyStore, idempotent } from '@bus/core';
import type pg from 'pg';
import { ORDERS_TOPIC, type OrderEvents } from './events.js';

/**
 * The billing module: charges each created order. Delivery is at least once (and the outbox relay may
 * send a row twice after a crash), so the `idempotent` middleware skips messages this group already
 * handled: a customer is never charged twice.
 */
export function billingModule(pool: pg.Pool, schema: string, store: IdempotencyStore, onDuplicate: () => void = () => {}) {
  return defineModule<OrderEvents>({
    name: 'billing',
    consumers: { charge: { topics: [ORDERS_TOPIC], events: ['order.created'] } },
    batchSize: 20,
    concurrency: 4,
    pollIntervalMs: 200,
    middleware: [idempotent({ store, ttlMs: 7 * 86_400_000, onDuplicate })],
    handler: async (ctx) => {
      await pool.query(`INSERT INTO "${schema}".charges (order_id, message_id, amount) VALUES ($1, $2, $3)`, [ctx.payload.orderId, ctx.message.id, ctx.payload.total]);
    },
  });
}
