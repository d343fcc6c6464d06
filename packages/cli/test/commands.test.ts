import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { bus, busDone, CONFIG, handled, killAll, logsMatching, MEMORY_CONFIG, waitFor } from './helpers.js';

const run = randomUUID().slice(0, 8);
const redisTopics: string[] = [];

afterAll(async () => {
  killAll();
  if (redisTopics.length > 0) {
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    await redis.del(...redisTopics.flatMap((t) => [t, `${t}.dlq`]));
    redis.disconnect();
  }
});

// The same session of commands against each real broker.
describe.each(['redis', 'kafka'] as const)('bus publish / run / status / dlq on %s', (transport) => {
  const topic = `cli-cmd-${transport}-${run}`;
  const module = `cmd${transport}${run}`;
  const env = { BUS_TEST_TRANSPORT: transport, BUS_TEST_TOPIC: topic, BUS_TEST_MODULE: module };
  const group = `${module}-jobs`;
  if (transport === 'redis') redisTopics.push(topic);
  const cli = (...args: string[]) => busDone([...args, '--config', CONFIG], env);
  const statusRow = async () => {
    const r = await cli('status', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toHaveLength(1);
    return r.json[0] as Record<string, unknown>;
  };

  it('publishes, runs the module (one success, one dead letter), reports status, lists and replays the dead letter', async () => {
    const ok = await cli('publish', topic, 'job.created', '{"n":1}', '--key', 'k1', '--header', 'x-test=yes');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json[0]).toMatchObject({ topic, event: 'job.created', transport, id: expect.any(String), position: expect.any(String) });
    const poisoned = await cli('publish', topic, 'job.created', '{"n":2,"fail":true}', '--key', 'k2');
    expect(poisoned.code, poisoned.stderr).toBe(0);
    const poisonedId = poisoned.json[0]?.id;

    const p = bus(['run', '--config', CONFIG], env);
    await waitFor('the handled message and the dead letter', () => handled(p).ended.size === 1 && logsMatching(p, /^message dead-lettered$/).length === 1, 45_000);
    expect(p.json().find((l) => l.end)?.end).toBe(ok.json[0]?.id);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);

    expect(await statusRow()).toMatchObject({ module, consumer: 'jobs', group, transport, topic, lag: 0, deadLetterTopic: `${topic}.dlq`, deadLetters: 1 });
    const table = await cli('status');
    expect(table.stdout).toMatch(/^MODULE\s+CONSUMER\s+GROUP\s+TRANSPORT\s+TOPIC\s+LAG\s+PENDING\s+DEAD-LETTERS/);
    expect(table.stdout).toContain(`1 (${topic}.dlq)`);

    const list = await cli('dlq', 'list', topic, '--json');
    expect(list.code, list.stderr).toBe(0);
    expect(list.json).toHaveLength(1);
    expect(list.json[0]).toMatchObject({
      id: poisonedId,
      event: 'job.created',
      key: 'k2',
      origin: topic,
      group,
      attempts: 2,
      error: 'Error',
      reason: 'job 2 is poisoned',
      payload: '{"n":2,"fail":true}',
    });
    const listTable = await cli('dlq', 'list', `${topic}.dlq`);
    expect(listTable.stdout).toMatch(/^POSITION\s+ID\s+EVENT\s+ORIGIN\s+GROUP\s+ATTEMPTS\s+ERROR\s+AT\s+REASON/);
    expect(listTable.stdout).toContain('job 2 is poisoned');
    if (transport === 'redis') {
      // Each listing read with a group of its own and deleted it: none is left on the stream.
      const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
      try {
        const groups = (await redis.xinfo('GROUPS', `${topic}.dlq`)) as unknown[][];
        expect(groups.map((g) => String(g[1])).filter((name) => name.startsWith('bus-cli-dlq-list-'))).toEqual([]);
      } finally {
        redis.disconnect();
      }
    }

    const replay = await cli('dlq', 'replay', topic);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toBe(`replayed 1 dead letter(s) from ${topic}.dlq`);
    // Back on the origin topic, not yet consumed; nothing left to replay.
    expect(await statusRow()).toMatchObject({ lag: 1, deadLetters: 0 });
    const again = await cli('dlq', 'replay', topic);
    expect(again.stdout).toBe(`replayed 0 dead letter(s) from ${topic}.dlq`);
    // Listing never consumes.
    expect((await cli('dlq', 'list', topic, '--json')).json).toHaveLength(1);

    // The module gets the replayed copy (same id), fails on it again, and dead-letters it again.
    const p2 = bus(['run', '--config', CONFIG], env);
    await waitFor('the replayed message', () => p2.json().some((l) => l.start === poisonedId), 45_000);
    await waitFor('its second dead letter', () => logsMatching(p2, /^message dead-lettered$/).length === 1);
    p2.child.kill('SIGTERM');
    expect((await p2.exited).code).toBe(0);
    expect(await statusRow()).toMatchObject({ lag: 0, deadLetters: 1 });
  });
});

describe('bus usage and errors', () => {
  it('exits 2 on usage errors, with the command to get help for', async () => {
    const cases: [string[], RegExp][] = [
      [['frob'], /unknown command "frob"\nRun "bus --help" for usage\./],
      [['publish', 'jobs', 'job.created'], /expected <topic> <event> <json>, got 2 argument\(s\)\nRun "bus publish --help"/],
      [['publish', 'jobs', 'job.created', '{"n":'], /<json> is not valid JSON/],
      [['publish', 'jobs', 'job.created', '{}', '--transport', 'nope'], /--transport must name a transport of the config \(memory\), got "nope"/],
      [['status', '--module', 'nope'], /no module "nope" in .*memory\.config\.ts \(modules: jobs\)/],
      [['dlq'], /expected "list" or "replay"\nRun "bus dlq --help"/],
      [['dlq', 'list'], /expected one <topic>, got 0\nRun "bus dlq list --help"/],
      [['dlq', 'list', 'jobs', '--limit', '0'], /--limit must be a positive integer, got "0"/],
      [['dlq', 'replay', 'jobs', '--delay', 'soon'], /--delay: "soon" is not a duration/],
      [['dlq', 'list', 'jobs', '--delay', '10m'], /--delay is an option of "dlq replay"/],
      [['run', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const r = await busDone([...args, '--config', MEMORY_CONFIG]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    const missing = await busDone(['status', '--config', '/nonexistent/bus.config.ts']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('config file /nonexistent/bus.config.ts does not exist');
  });

  it('prints help with --help for every command, exit 0', async () => {
    for (const args of [['--help'], ['run', '--help'], ['publish', '-h'], ['status', '--help'], ['dlq', '--help'], ['dlq', 'replay', '--help']]) {
      const r = await busDone(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/Usage: bus/);
    }
  });

  it('exits 3 with the broker error when the broker cannot be reached', async () => {
    const r = await busDone(['publish', 'jobs', 'job.created', '{"n":1}', '--config', CONFIG], { REDIS_URL: 'redis://127.0.0.1:1', BUS_TEST_TRANSPORT: 'redis' });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^bus: \[bus/m);
    expect(r.stderr).toMatch(/could not connect to Redis/);
  });
});
