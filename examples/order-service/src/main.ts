// `pnpm start`: the order service end to end on PostgreSQL ($PG_URL) and Redis ($REDIS_URL).
// DUPLICATE_SENDS=1 makes the relay send every batch twice (as after a crash): nobody is charged twice.
import { runDemo } from './demo.js';

const result = await runDemo({
  pgUrl: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  schema: process.env.ORDERS_SCHEMA ?? 'order_service',
  keyPrefix: process.env.ORDERS_PREFIX ?? 'order-service:',
  orders: Number(process.env.ORDERS ?? 20),
  duplicateSends: process.env.DUPLICATE_SENDS === '1',
  log: (line) => console.log(line),
});
const twice = [...result.charges.values()].filter((n) => n > 1).length;
process.exitCode = result.charges.size === result.committed.length && twice === 0 ? 0 : 1;
