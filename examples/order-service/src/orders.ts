import { migrate, type PgOutbox } from '@bus/outbox-postgres';
import type pg from 'pg';
import { ORDERS_TOPIC, type OrderEvents } from './events.js';

/** The service's own tables next to the outbox's (all in `schema`). */
export async function setUpDatabase(pool: pg.Pool, schema: string): Promise<void> {
  await migrate(pool, { schema });
  await pool.query(`CREATE TABLE IF NOT EXISTS "${schema}".orders (id text PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL)`);
  // No unique constraint on purpose: a charge made twice would show as two rows.
  await pool.query(`CREATE TABLE IF NOT EXISTS "${schema}".charges (order_id text NOT NULL, message_id text NOT NULL, amount numeric NOT NULL)`);
}

export interface Order {
  orderId: string;
  customer: string;
  total: number;
}

/**
 * Saves an order and its `order.created` event in one transaction: both are stored, or neither is.
 * `failBeforeCommit` simulates a failure after both writes (a constraint, a crash): the transaction
 * rolls back and the event never goes out.
 */
export async function placeOrder(pool: pg.Pool, schema: string, outbox: PgOutbox<OrderEvents>, order: Order, failBeforeCommit = false): Promise<void> {
  const tx = await pool.connect();
  try {
    await tx.query('BEGIN');
    await tx.query(`INSERT INTO "${schema}".orders (id, customer, total) VALUES ($1, $2, $3)`, [order.orderId, order.customer, order.total]);
    await outbox.publish(tx, ORDERS_TOPIC, 'order.created', order, { key: order.customer });
    if (failBeforeCommit) throw new Error(`payment provider refused order ${order.orderId}`);
    await tx.query('COMMIT');
  } catch (error) {
    await tx.query('ROLLBACK');
    throw error;
  } finally {
    tx.release();
  }
}
