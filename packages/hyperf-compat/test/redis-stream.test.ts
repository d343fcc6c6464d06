import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { createBus, DLQ_HEADER } from '@bus/core';
import { hyperfMessagebusCodec } from '../src/index.js';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type RedisStreamTransport, redisStream } from '@bus/redis-stream';
import { deleteKeys, nodeOf, SHARED_REDIS_URL } from './helpers/redis.js';

/*
 * A Node service joining a PHP hyperf-messagebus deployment on Redis: entries in the PHP bus's format
 * (built by the seed's own message code in real `php`, written with `redis-cli XADD`) are consumed by a
 * bus with `hyperfMessagebusCodec({ wire: 'redis' })`, and what that bus publishes is read back by the
 * seed's consumer code. Fails, not skips, when php or redis-cli is missing.
 */

const exec = promisify(execFile);
const prefix = `bus-test:php-${randomUUID().slice(0, 8)}:`;
const node = nodeOf(SHARED_REDIS_URL);
const transports: RedisStreamTransport[] = [];
const redis = new Redis({ ...node, lazyConnect: true, maxRetriesPerRequest: 1 });

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  redis.disconnect();
  await deleteKeys([node], `${prefix}*`);
});

/** The seed's message classes (mustafa3264/messagebus src/Messages/Structs, trimmed) and its Redis producer/consumer steps. */
const SEED = `
putenv('APP_NAME=consumer-app');
function env($k) { $v = getenv($k); return $v === false ? null : $v; }
class H { private string $event; private string $messageId;
    public function getEvent(): string { return $this->event; } public function setEvent(string $e): void { $this->event = $e; }
    public function getMessageId(): string { return $this->messageId; } public function setMessageId(string $id): void { $this->messageId = $id; }
    public function toArray(): array { return ['event' => $this->getEvent(), 'message_id' => $this->getMessageId()]; } }
class P { private string $app; private string $host; private float $happenedAt; private array $datas;
    public function __construct() { $this->app = env('APP_NAME'); $this->host = php_uname('n'); $this->happenedAt = microtime(true); }
    public function setHost(string $h): void { $this->host = $h; } public function setHappenedAt(float $t): void { $this->happenedAt = $t; }
    public function getHappenedAt(): float { return $this->happenedAt; } public function setDatas(array $d): void { $this->datas = $d; }
    public function toArray(): array { return array_merge(['_app' => $this->app, '_host' => $this->host, '_happened_at' => $this->happenedAt], $this->datas); } }
class M { public H $headers; public P $payload; }
function builder(string $event, array $data, string $key = ''): M {
    $h = new H(); $h->setEvent($event); if (!$key) { $key = md5(microtime(true) . '-msg'); } $h->setMessageId($key);
    $p = new P(); $p->setDatas($data); $m = new M(); $m->headers = $h; $m->payload = $p; return $m;
}
function message(string $event, array $data, string $app, string $host, float $at): M {
    putenv('APP_NAME=' . $app); $m = builder($event, $data); $m->payload->setHost($host); $m->payload->setHappenedAt($at); return $m;
}
// RedisProducerImplement::produce → xAdd($topic, '*', array_merge(headers, payload)); phpredis sends (string) of each value.
function redisFields(M $m): array {
    return array_map(fn ($v) => is_array($v) ? 'Array' : (string) $v, array_merge($m->headers->toArray(), $m->payload->toArray()));
}
// RedisConsumerImplements::consume: fields minus event/message_id → data; handleMessage() gets payload->toArray().
function redisConsume(array $item, string $streamId): M {
    $event = $item['event']; unset($item['event'], $item['message_id']); return builder($event, $item, $streamId);
}
`;

function php(code: string): string {
  try {
    return execFileSync('php', ['-d', 'display_errors=stderr', '-r', `declare(strict_types=1);\n${SEED}\n${code}`], { encoding: 'utf8', timeout: 20_000 });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('php is not installed: these tests need php-cli (apt-get install php-cli)');
    throw new Error(`php failed: ${e.stderr || e.message}`);
  }
}
const cli = async (...args: string[]) => (await exec('redis-cli', ['-h', node.host, '-p', String(node.port), ...args], { timeout: 5000 })).stdout.trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (what: string, predicate: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
};
/** The fields of a stream entry as a PHP consumer (phpredis) gets them: name → string, in order. */
const entryFields = async (key: string, id: string): Promise<Record<string, string>> => {
  const [entry] = await redis.xrange(key, id, id);
  const fields: Record<string, string> = {};
  const raw = entry?.[1] ?? [];
  for (let i = 0; i + 1 < raw.length; i += 2) fields[raw[i] as string] = raw[i + 1] as string;
  return fields;
};

type Events = {
  'anchor.income': Record<string, string>;
  'live.duration': { anchorId: string; minutes: number };
};

describe('a Node bus in a PHP hyperf-messagebus deployment on Redis', () => {
  it('consumes entries in the PHP format written by redis-cli, skips unsubscribed events and dead-letters broken entries', async () => {
    const topic = `live-${randomUUID().slice(0, 6)}`;
    const key = `${prefix}${topic}`;
    const fields = JSON.parse(
      php(`echo json_encode([
        redisFields(message('anchor.income', ['anchorId' => 'a1', 'amount' => 30, 'ratio' => 0.5, 'vip' => true, 'name' => '主播', 'tags' => ['x']], 'live-php', 'php-host-1', 1764000000.123456)),
        redisFields(message('live.duration', ['anchorId' => 'a1', 'minutes' => 61], 'live-php', 'php-host-1', 1764000001.0)),
      ]);`),
    ) as [Record<string, string>, Record<string, string>];
    await cli('XADD', key, '*', ...Object.entries(fields[0]).flat());
    await cli('XADD', key, '*', ...Object.entries(fields[1]).flat()); // not subscribed: acknowledged and skipped
    await cli('XADD', key, '*', 'event', 'anchor.income', 'message_id', 'broken-1', 'amount', '5'); // no _happened_at
    await cli('XADD', key, '*', ...Object.entries({ ...fields[0], message_id: 'second', amount: '40' }).flat());

    const bus = createBus<Events>({
      transports: { redis: transport() },
      codec: hyperfMessagebusCodec({ wire: 'redis', app: 'live-node' }),
    });
    const handled: { id: string; payload: Record<string, string>; source: string | undefined; publishedAt: number; host: string | undefined }[] = [];
    bus.module({
      name: 'tasks',
      pollIntervalMs: 100,
      consumers: { income: { topics: [topic], events: ['anchor.income'] } },
      handler: ({ payload, message }) => {
        handled.push({ id: message.id, payload, source: message.source, publishedAt: message.publishedAt, host: message.headers._host });
      },
    });
    await bus.start();
    await waitFor('two handled messages', () => handled.length === 2);
    const dlq = await waitForEntries(`${key}.dlq`, 1);
    await bus.close();

    expect(handled[0]).toEqual({
      id: fields[0].message_id,
      // Every value arrives as a string, as PHP handlers get them; the PHP producer wrote "Array" for the nested one.
      payload: { anchorId: 'a1', amount: '30', ratio: '0.5', vip: '1', name: '主播', tags: 'Array' },
      source: 'live-php',
      publishedAt: 1_764_000_000_123.5, // PHP's (string) cast keeps 14 digits: "1764000000.1235"
      host: 'php-host-1',
    });
    expect(handled[1]).toMatchObject({ id: 'second', payload: { amount: '40' } });
    expect(dlq[0]).toMatchObject({ event: 'anchor.income', message_id: 'broken-1', amount: '5', [DLQ_HEADER.error]: 'DECODE' });
    expect(dlq[0]?.[DLQ_HEADER.reason]).toMatch(/"_happened_at" must be Unix seconds, got nothing/);
    expect(await cli('XPENDING', key, 'tasks-income')).toMatch(/^0\b/);
  });

  it('publishes entries that the PHP consumer reads as if a PHP producer had written them', async () => {
    const topic = `live-${randomUUID().slice(0, 6)}`;
    const key = `${prefix}${topic}`;
    const bus = createBus<Events>({
      transports: { redis: transport() },
      codec: hyperfMessagebusCodec({ wire: 'redis', host: 'node-host-1' }),
      source: 'live-node',
    });
    const payload = { anchorId: 'a1', minutes: 61.5 };
    const receipt = await bus.publish(topic, 'live.duration', payload);
    await bus.close();
    const fields = await entryFields(key, receipt.position as string);
    const publishedAt = Number(fields._happened_at) * 1000;
    expect(Math.abs(publishedAt - Date.now())).toBeLessThan(10_000);

    // redis-stream leaves an empty value field out, so a PHP consumer sees no extra `_data` field.
    const { ...rest } = fields;
    expect(fields).not.toHaveProperty('_data');
    const theirs = JSON.parse(
      php(`echo json_encode(redisFields(message('live.duration', ['anchorId' => 'a1', 'minutes' => 61.5], 'live-node', 'node-host-1', ${fields._happened_at})));`),
    ) as Record<string, string>;
    expect(rest).toEqual({ ...theirs, message_id: rest.message_id });
    expect(rest.message_id).toMatch(/^[0-9a-f-]{36}$/); // our UUIDv7, where PHP writes an md5

    const out = php(`
      $m = redisConsume(json_decode(${`base64_decode('${Buffer.from(JSON.stringify(rest)).toString('base64')}')`}, true), '${receipt.position}');
      echo json_encode(['event' => $m->headers->getEvent(), 'payload' => $m->payload->toArray()]);
    `);
    expect(JSON.parse(out)).toEqual({
      event: 'live.duration',
      payload: { _app: 'live-node', _host: 'node-host-1', _happened_at: fields._happened_at, anchorId: 'a1', minutes: '61.5' },
    });
  });

  it('round-trips between two Node services through the PHP format', async () => {
    const topic = `live-${randomUUID().slice(0, 6)}`;
    const codec = hyperfMessagebusCodec({ wire: 'redis', carryHeaders: ['traceparent'] });
    const bus = createBus<Events>({ transports: { redis: transport() }, codec, source: 'live-node' });
    const handled: { payload: unknown; headers: Record<string, string> }[] = [];
    bus.module({
      name: 'tasks',
      pollIntervalMs: 100,
      consumers: { duration: { topics: [topic], events: ['live.duration'] } },
      handler: ({ payload, message }) => {
        handled.push({ payload, headers: message.headers });
      },
    });
    await bus.start();
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await bus.publish(topic, 'live.duration', { anchorId: 'a1', minutes: 61 }, { headers: { traceparent } });
    await waitFor('the message', () => handled.length === 1);
    await bus.close();
    // The traceparent field is a header again, not payload.
    expect(handled[0]?.payload).toEqual({ anchorId: 'a1', minutes: '61' });
    expect(handled[0]?.headers).toMatchObject({ traceparent });
  });
});

function transport(): RedisStreamTransport {
  const t = redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix });
  transports.push(t);
  return t;
}

async function waitForEntries(key: string, n: number): Promise<Record<string, string>[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const entries = await redis.xrange(key, '-', '+');
    if (entries.length >= n) {
      return entries.map(([, raw]) => {
        const fields: Record<string, string> = {};
        for (let i = 0; i + 1 < raw.length; i += 2) fields[raw[i] as string] = raw[i + 1] as string;
        return fields;
      });
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} entries in ${key}`);
    await sleep(50);
  }
}
