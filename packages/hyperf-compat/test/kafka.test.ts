// The hyperf-messagebus codec on a real broker: a Node service and the PHP bus share Kafka topics.
// PHP (Debian's php-cli) writes and reads the values; kcat moves the bytes.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createBus, type HandlerContext } from '@bus/core';
import { hyperfMessagebusCodec } from '../src/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBroker, testTransport, waitFor } from './helpers/kafka.js';
import { headersOf, kcat, kcatRead } from '../../kafka/test/helpers/kcat.js';

type Events = { 'live.duration': { anchorId: string; minutes: number } };
const run = randomUUID().slice(0, 8);

function php(code: string): string {
  try {
    return execFileSync('php', ['-d', 'display_errors=stderr', '-r', code], { encoding: 'utf8', timeout: 20_000 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('php is not installed (apt-get install php-cli; scripts/services.sh does it)');
    throw error;
  }
}

describe('hyperf-messagebus codec over Kafka, against PHP', () => {
  const closers: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    await requireBroker();
  });
  afterAll(async () => {
    for (const close of closers) await close();
  });

  it('PHP reads what the bus publishes: serialize()d value, event as the first header, key = message id', async () => {
    const topic = `bus-kafka-${run}-php-out`;
    const bus = createBus<Events>({ transports: { kafka: testTransport() }, codec: hyperfMessagebusCodec({ wire: 'kafka', host: 'node-1' }), source: 'live-node' });
    closers.push(() => bus.close());
    const receipt = await bus.publish(topic, 'live.duration', { anchorId: 'a1', minutes: 61 });
    const [record] = await kcatRead(topic);
    expect(record?.key).toBe(receipt.id);
    expect(record?.headers?.[0]).toBe('event');
    expect(headersOf(record as never)).toMatchObject({ event: 'live.duration', message_id: receipt.id });
    const decoded = JSON.parse(php(`echo json_encode(unserialize(base64_decode('${Buffer.from(record?.payload ?? '').toString('base64')}')));`));
    expect(decoded.headers).toEqual({ event: 'live.duration', message_id: receipt.id });
    expect(decoded.payload).toMatchObject({ _app: 'live-node', _host: 'node-1', anchorId: 'a1', minutes: 61 });
    expect(Math.abs(decoded.payload._happened_at * 1000 - Date.now())).toBeLessThan(60_000);
  });

  it('the bus handles what PHP produces (serialize() of the seed envelope, sent by kcat)', async () => {
    const topic = `bus-kafka-${run}-php-in`;
    const bus = createBus<Events>({ transports: { kafka: testTransport() }, codec: hyperfMessagebusCodec({ wire: 'kafka' }) });
    closers.push(() => bus.close());
    const handled: HandlerContext<Events>[] = [];
    bus.module({
      name: 'tasks',
      pollIntervalMs: 100,
      consumers: { duration: { topics: [topic], events: ['live.duration'] } },
      handler: (ctx) => {
        handled.push(ctx);
      },
    });
    await bus.start();
    const value = php(
      `echo serialize(['headers' => ['event' => 'live.duration', 'message_id' => md5('1-msg')], 'payload' => ['_app' => 'php-app', '_host' => 'php-host', '_happened_at' => 1795872120.6403, 'anchorId' => 'a9', 'minutes' => 75]]);`,
    );
    const id = php(`echo md5('1-msg');`);
    await kcat(['-P', '-t', topic, '-k', id, '-H', 'event=live.duration', '-H', `message_id=${id}`], value);
    await waitFor('the PHP message', () => handled.length === 1, 30_000);
    const ctx = handled[0] as HandlerContext<Events>;
    expect(ctx.payload).toEqual({ anchorId: 'a9', minutes: 75 });
    expect(ctx.message.id).toBe(id);
    expect(ctx.message.source).toBe('php-app');
    // microtime(true) seconds → milliseconds, the microseconds kept as the fraction.
    expect(ctx.message.publishedAt).toBeCloseTo(1795872120640.3, 3);
  });
});
