import { createBus, type Transport } from '@bus/core';
import { pgOutbox } from '@bus/outbox-postgres';
import { redisIdempotencyStore, redisStream } from '@bus/redis-stream';
import pg from 'pg';
import { billingModule } from './billing.js';
import { orderEvents } from './events.js';
import { placeOrder, setUpDatabase } from './orders.js';

export interface DemoOptions {
  pgUrl: string;
  redisUrl: string;
  /** Schema of the service's tables. */
  schema: string;
  /** Redis key prefix (streams and idempotency records). */
  keyPrefix: string;
  /** Orders placed; every fourth one fails before its commit. */
  orders: number;
  /** Make the relay send every batch twice, as a relay that crashed between send and delete would. */
  duplicateSends?: boolean;
  log?: (line: string) => void;
}

export interface DemoResult {
  committed: string[];
  rolledBack: string[];
  /** order id → number of charges */
  charges: Map<string, number>;
  duplicatesSkipped: number;
}

/** A transport that sends every batch twice: what consumers see after a relay crash between send and delete. */
function sendingTwice(t: Transport): Transport {
  return {
    specificationVersion: t.specificationVersion,
    name: t.name,
    capabilities: t.capabilities,
    publish: async (topic, records) => {
      await t.publish(topic, records);
      return t.publish(topic, records);
    },
    subscribe: (options, handler) => t.subscribe(options, handler),
    close: () => t.close(),
  };
}

/**
 * The order service end to end: orders are placed (some roll back), the outbox relay forwards the
 * committed ones to Redis, and billing charges each order once.
 */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const log = o.log ?? (() => {});
  const pool = new pg.Pool({ connectionString: o.pgUrl, max: 8 });
  await setUpDatabase(pool, o.schema);
  const outbox = pgOutbox({ pool, schema: o.schema, events: orderEvents, source: 'order-service' });

  // The worker side: the relay and the billing consumer (in production: `bus run` worker processes).
  const redis = redisStream({ url: o.redisUrl, keyPrefix: o.keyPrefix });
  const bus = createBus({ events: orderEvents, transports: { redis: o.duplicateSends ? sendingTwice(redis) : redis } });
  const store = redisIdempotencyStore({ url: o.redisUrl, keyPrefix: `${o.keyPrefix}idem:` });
  let duplicatesSkipped = 0;
  bus.module(billingModule(pool, o.schema, store, () => duplicatesSkipped++));
  await bus.start();
  const relay = outbox.relay(bus, { batchSize: 50, pollIntervalMs: 200 });

  const committed: string[] = [];
  const rolledBack: string[] = [];
  try {
    for (let n = 0; n < o.orders; n++) {
      const order = { orderId: `${o.schema}-o${n}`, customer: `c${n % 5}`, total: 10 + n };
      const fail = n % 4 === 3;
      try {
        await placeOrder(pool, o.schema, outbox, order, fail);
        committed.push(order.orderId);
      } catch (error) {
        rolledBack.push(order.orderId);
        log(`order ${order.orderId} rolled back: ${(error as Error).message}`);
      }
    }
    log(`${committed.length} orders committed, ${rolledBack.length} rolled back`);
    const charged = async () => (await pool.query(`SELECT count(DISTINCT order_id)::int AS n FROM "${o.schema}".charges`)).rows[0].n as number;
    const deadline = Date.now() + 30_000;
    while ((await charged()) < committed.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // With duplicate sends, wait for the second copies too (they are skipped, not charged).
    while (o.duplicateSends && duplicatesSkipped < committed.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const { rows } = await pool.query(`SELECT order_id, count(*)::int AS n FROM "${o.schema}".charges GROUP BY order_id`);
    const charges = new Map<string, number>(rows.map((r: { order_id: string; n: number }) => [r.order_id, r.n]));
    log(`${charges.size} orders charged (${[...charges.values()].filter((n) => n > 1).length} twice), ${duplicatesSkipped} duplicate deliveries skipped`);
    return { committed, rolledBack, charges, duplicatesSkipped };
  } finally {
    await relay.close();
    await bus.close();
    await store.close?.();
    await pool.end();
  }
}
