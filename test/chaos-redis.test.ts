import { describe, expect, it } from 'vitest';
import { clusterFailover, sentinelFailover } from './chaos/redis-failover.js';

// Short versions of the `pnpm chaos` failover scenarios (2,000 messages), on our own loopback ports.
describe('Redis failover (own servers on loopback ports)', () => {
  it('Sentinel: the master is SIGKILLed mid-run; the bus follows the promotion; with waitReplicas 1 no acknowledged publish is lost', async () => {
    const row = await sentinelFailover({ base: Number(process.env.BUS_CHAOS_SENTINEL_PORT ?? 18200), messages: 2000, deadlineMs: 50_000 });
    console.log(row);
    expect(row.publishedOk).toBe(2000);
    expect(row.lost).toBe(0);
    expect(row.handled).toBe(2000);
  }, 90_000);

  it('Cluster 3 masters + 3 replicas: the stream\'s master is SIGKILLed mid-run; a replica takes over; with waitReplicas 1 no acknowledged publish is lost', async () => {
    const row = await clusterFailover({ base: Number(process.env.BUS_CHAOS_CLUSTER_PORT ?? 18301), messages: 2000, deadlineMs: 50_000 });
    console.log(row);
    expect(row.publishedOk).toBe(2000);
    expect(row.lost).toBe(0);
    expect(row.handled).toBe(2000);
  }, 90_000);
});
