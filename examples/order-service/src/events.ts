import { defineEvents, type InferEvents } from '@bus/core';
import { z } from 'zod';

/** The order service's events: schemas that type publishers and handlers and are checked at both ends. */
export const orderEvents = defineEvents({
  'order.created': z.object({ orderId: z.string().min(1), customer: z.string().min(1), total: z.number().positive() }),
});
export type OrderEvents = InferEvents<typeof orderEvents>;

/** The topic orders are published on (tests use a topic of their own). */
export const ORDERS_TOPIC = process.env.ORDERS_TOPIC || 'orders';
