import { describe, expect, it } from 'vitest';
import { kafkaMalformed } from './chaos/kafka-faults.js';
import { redisAofRestart, redisMalformed, redisPoison, redisSigtermDrain } from './chaos/redis-faults.js';

// Short versions of the `pnpm chaos` fault scenarios, each on a redis-server of its own (loopback ports
// BUS_CHAOS_REDIS_PORT + 1 … + 4, default 18211 … 18214; never the shared Redis).
const base = Number(process.env.BUS_CHAOS_REDIS_PORT ?? 18210);
const kafkaBase = Number(process.env.BUS_CHAOS_KAFKA_PORT ?? 18092);

describe('Redis faults (own servers on loopback ports)', () => {
  it('appendonly yes + appendfsync always: the server is SIGKILLed mid-run and restarted on its files; no acknowledged publish is lost', async () => {
    const row = await redisAofRestart({ base: base + 1, messages: 5000, deadlineMs: 40_000 });
    console.log(row);
    expect(row.publishedOk).toBe(5000);
    expect(row.lost).toBe(0);
    expect(row.handled).toBe(5000);
    // The kill happened during the run: publishing was out for a while.
    expect(row.recoverMs).toBeGreaterThan(0);
  }, 60_000);

  it('1 % poison messages (the handler always throws): exactly those are dead-lettered, every other one handled once', async () => {
    const row = await redisPoison({ base: base + 2, messages: 5000, deadlineMs: 30_000 });
    console.log(row);
    expect(row.publishedOk).toBe(5000);
    expect(row.deadLettered).toBe(50);
    expect(row.handled).toBe(4950);
    expect(row.mismatches).toBe(0);
    expect(row.lost).toBe(0);
    expect(row.duplicates).toBe(0);
  }, 60_000);

  it('1,000 malformed entries written by redis-cli among 1,000 good ones: each malformed one dead-lettered byte for byte with a reason, each good one handled', async () => {
    const row = await redisMalformed({ base: base + 3, malformed: 1000, deadlineMs: 30_000 });
    console.log(row);
    expect(row.deadLettered).toBe(1000);
    expect(row.handled).toBe(1000);
    expect(row.mismatches).toBe(0);
    expect(row.lost).toBe(0);
  }, 60_000);

  it('SIGTERM mid-batch, 3 times: each worker exits 0 within its drain deadline, no handler cut, none lost, none handled twice', async () => {
    const row = await redisSigtermDrain({ base: base + 4, messages: 400, terms: 3, handlerMs: 200, drainMs: 5000, deadlineMs: 50_000 });
    console.log(row);
    expect(row.scenario).toContain('x3');
    expect(row.mismatches).toBe(0);
    expect(row.publishedOk).toBe(400);
    expect(row.lost).toBe(0);
    expect(row.handled).toBe(400);
    expect(row.duplicates).toBe(0);
    expect(row.recoverMs).toBeLessThanOrEqual(5000);
  }, 80_000);
});

describe('Kafka faults (a single node of its own: scripts/kafka.sh on BUS_CHAOS_KAFKA_PORT + 30, controller + 1030)', () => {
  it('1,000 malformed records written by kcat among 1,000 good ones: each malformed one dead-lettered with its value and headers byte for byte and a reason, each good one handled', async () => {
    const row = await kafkaMalformed({ port: kafkaBase + 30, controllerPort: kafkaBase + 1030, malformed: 1000, deadlineMs: 100_000 });
    console.log(row);
    expect(row.deadLettered).toBe(1000);
    expect(row.handled).toBe(1000);
    expect(row.mismatches).toBe(0);
    expect(row.lost).toBe(0);
  }, 150_000);
});
