/**
 * `pnpm chaos [--short] [scenario…]`: runs the fault scenarios on brokers of its own (loopback ports
 * 18200+ unless BUS_CHAOS_*_PORT say otherwise; never the shared Redis on 6379) and prints one table.
 * Each scenario is bounded by its own deadline. Exit code 1 when a scenario lost an acknowledged publish
 * or found a mismatch (a wrong dead letter, a drain that did not exit 0 in time).
 */
import { kafkaFailover } from './kafka-failover.js';
import { kafkaBrokerRestart, kafkaConsumerCrash, kafkaMalformed } from './kafka-faults.js';
import { redisConsumerCrash } from './redis-consumer-crash.js';
import { redisAofRestart, redisMalformed, redisPoison, redisSigtermDrain } from './redis-faults.js';
import { clusterFailover, sentinelFailover } from './redis-failover.js';
import { type ChaosRow, formatTable } from './row.js';

const args = process.argv.slice(2);
const short = args.includes('--short');
const only = args.filter((a) => !a.startsWith('--'));
const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

const scenarios: Record<string, () => Promise<ChaosRow>> = {
  'redis-consumer-kill': () =>
    redisConsumerCrash({ base: port('BUS_CHAOS_REDIS_PORT', 18210), messages: short ? 10_000 : 100_000, kills: short ? 3 : 10, everyMs: short ? 500 : 1500, deadlineMs: short ? 60_000 : 240_000 }),
  'redis-aof-restart': () => redisAofRestart({ base: port('BUS_CHAOS_REDIS_PORT', 18210) + 1, messages: short ? 5000 : 50_000, deadlineMs: short ? 40_000 : 180_000 }),
  'redis-poison': () => redisPoison({ base: port('BUS_CHAOS_REDIS_PORT', 18210) + 2, messages: short ? 5000 : 20_000, deadlineMs: short ? 40_000 : 120_000 }),
  'redis-malformed': () => redisMalformed({ base: port('BUS_CHAOS_REDIS_PORT', 18210) + 3, malformed: 1000, deadlineMs: 60_000 }),
  'redis-sigterm-drain': () =>
    redisSigtermDrain({ base: port('BUS_CHAOS_REDIS_PORT', 18210) + 4, messages: short ? 400 : 2000, terms: short ? 3 : 10, handlerMs: 200, drainMs: 5000, deadlineMs: short ? 60_000 : 240_000 }),
  'redis-sentinel': () => sentinelFailover({ base: port('BUS_CHAOS_SENTINEL_PORT', 18200), messages: short ? 2000 : 20_000, deadlineMs: short ? 60_000 : 240_000 }),
  'redis-cluster': () => clusterFailover({ base: port('BUS_CHAOS_CLUSTER_PORT', 18301), messages: short ? 2000 : 20_000, deadlineMs: short ? 60_000 : 240_000 }),
  'kafka-leader': () =>
    kafkaFailover({
      base: port('BUS_CHAOS_KAFKA_PORT', 18092),
      controllerBase: port('BUS_CHAOS_KAFKA_PORT', 18092) + 100,
      messages: short ? 2000 : 20_000,
      deadlineMs: short ? 150_000 : 400_000,
      runDir: process.env.BUS_CHAOS_KAFKA_RUN_DIR,
    }),
  // Single Kafka nodes: clients on base+10, +20, +30 (the 3-node cluster has base … base+2), controllers
  // on base+1010 … (clear of the Sentinel ports).
  'kafka-broker-restart': () =>
    kafkaBrokerRestart({ port: port('BUS_CHAOS_KAFKA_PORT', 18092) + 10, controllerPort: port('BUS_CHAOS_KAFKA_PORT', 18092) + 1010, messages: short ? 5000 : 50_000, deadlineMs: short ? 120_000 : 300_000 }),
  'kafka-consumer-kill': () =>
    kafkaConsumerCrash({
      port: port('BUS_CHAOS_KAFKA_PORT', 18092) + 20,
      controllerPort: port('BUS_CHAOS_KAFKA_PORT', 18092) + 1020,
      messages: short ? 3000 : 20_000,
      kills: short ? 2 : 5,
      everyMs: short ? 2000 : 5000,
      sessionMs: 6000,
      batchMs: 500,
      deadlineMs: short ? 120_000 : 300_000,
    }),
  'kafka-malformed': () =>
    kafkaMalformed({ port: port('BUS_CHAOS_KAFKA_PORT', 18092) + 30, controllerPort: port('BUS_CHAOS_KAFKA_PORT', 18092) + 1030, malformed: 1000, deadlineMs: 180_000 }),
};

const rows: ChaosRow[] = [];
for (const [name, scenario] of Object.entries(scenarios)) {
  if (only.length > 0 && !only.includes(name)) continue;
  console.error(`chaos: ${name}${short ? ' (short)' : ''}…`);
  try {
    const row = await scenario();
    rows.push(row);
    console.error(`chaos: ${name}: ${row.detail}`);
  } catch (error) {
    console.error(`chaos: ${name} failed: ${(error as Error).stack ?? error}`);
    rows.push({ scenario: `${name} (FAILED: ${(error as Error).message})`, messages: 0, publishedOk: 0, handled: 0, lost: 0, duplicates: 0, deadLettered: 0, recoverMs: 0, detail: '', seconds: 0 });
  }
}
console.log(formatTable(rows));
process.exit(rows.some((r) => r.lost > 0 || (r.mismatches ?? 0) > 0 || r.scenario.includes('FAILED')) ? 1 : 0);
