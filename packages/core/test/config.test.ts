import { describe, expect, it } from 'vitest';
import { ConfigError, createBus, memoryTransport } from '../src/index.js';

type Events = { 'a.b': { n: number } };

describe('configuration errors name the key path and the bad value', () => {
  const bus = () => createBus<Events>({ transports: { memory: memoryTransport() } });
  const base = { name: 'tasks', consumers: { c: { topics: ['t'], events: ['a.b' as const] } }, handler: () => {} };

  const cases: [string, () => unknown, string][] = [
    ['batchSize 0', () => bus().module({ ...base, batchSize: 0 }), '[bus] modules.tasks.batchSize must be an integer from 1 to 100000, got 0'],
    ['concurrency 1.5', () => bus().module({ ...base, concurrency: 1.5 }), '[bus] modules.tasks.concurrency must be an integer from 1 to 10000, got 1.5'],
    ['retry.jitter', () => bus().module({ ...base, retry: { jitter: 2 } }), '[bus] modules.tasks.retry.jitter must be a number from 0 to 1, got 2'],
    ['unknown transport', () => bus().module({ ...base, transport: 'kafka' }), '[bus] modules.tasks.transport must name a configured transport (memory), got "kafka"'],
    ['empty topics', () => bus().module({ ...base, consumers: { c: { topics: [], events: ['a.b'] } } }), '[bus] modules.tasks.consumers.c.topics must be a non-empty array of strings, got []'],
    ['bad event', () => bus().module({ ...base, consumers: { c: { topics: ['t'], events: [''] as never } } }), '[bus] modules.tasks.consumers.c.events[0] must be a non-empty string, got ""'],
    ['startFrom', () => bus().module({ ...base, startFrom: 'middle' as never }), '[bus] modules.tasks.startFrom must be one of "earliest", "latest", got "middle"'],
    ['handler', () => bus().module({ ...base, handler: undefined as never }), '[bus] modules.tasks.handler must be a function, got undefined'],
    ['no transports', () => createBus({ transports: {} }), '[bus] transports must name at least one transport, got {}'],
    ['two transports, no default', () => createBus({ transports: { a: memoryTransport(), b: memoryTransport() } }), '[bus] defaultTransport must be set when there are several transports (a, b), got undefined'],
    ['not a transport', () => createBus({ transports: { a: {} as never } }), '[bus] transports.a must be a Transport (publish, subscribe, close), got {}'],
    // Misspelt keys: each is rejected with its full path and the key it most likely meant.
    ['concurency', () => bus().module({ ...base, concurency: 8 } as never), '[bus] modules.tasks.concurency is not an option; did you mean "concurrency"?, got 8'],
    ['batchsize', () => bus().module({ ...base, batchsize: 5 } as never), '[bus] modules.tasks.batchsize is not an option; did you mean "batchSize"?, got 5'],
    ['retry.atempts', () => bus().module({ ...base, retry: { atempts: 5 } } as never), '[bus] modules.tasks.retry.atempts is not an option; did you mean "attempts"?, got 5'],
    ['defaultTransprot', () => createBus({ transports: { memory: memoryTransport() }, defaultTransprot: 'memory' } as never), '[bus] defaultTransprot is not an option; did you mean "defaultTransport"?, got "memory"'],
    ['consumer evnets', () => bus().module({ ...base, consumers: { c: { topics: ['t'], evnets: ['a.b'] } } } as never), '[bus] modules.tasks.consumers.c.evnets is not an option; did you mean "events"?, got ["a.b"]'],
    ['a key far from any', () => bus().module({ ...base, xyzzy: 1 } as never), '[bus] modules.tasks.xyzzy is not an option; known options: name, transport, consumers, handler, batchSize, pollIntervalMs, concurrency, retry, maxDeliveries, retryTopic, deadLetterTopic, startFrom, drainTimeoutMs, lagIntervalMs, middleware, policies, onStart, got 1'],
  ];
  for (const [what, make, message] of cases) {
    it(what, () => {
      let thrown: unknown;
      try {
        make();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as Error).message).toBe(message);
    });
  }

  it('a module registered twice is refused', () => {
    const b = bus().module(base);
    expect(() => b.module(base)).toThrow('[bus] modules.tasks is registered twice, got "tasks"');
  });

  it('publish and publishBatch refuse an empty event name with a ConfigError, and nothing is sent', async () => {
    const transport = memoryTransport();
    const b = createBus<Events>({ transports: { memory: transport } });
    await expect(b.publish('t', '' as never, { n: 1 } as never)).rejects.toThrow('[bus] event must be a non-empty event name, got ""');
    await expect(b.publish('t', '' as never, { n: 1 } as never)).rejects.toSatisfy((e) => ConfigError.isInstance(e));
    await expect(b.publishBatch('t', [{ event: 'a.b', payload: { n: 1 } }, { event: '' as never, payload: { n: 2 } }])).rejects.toThrow(
      '[bus] entries[1].event must be a non-empty event name, got ""',
    );
    expect(await transport.lag?.('g', ['t'])).toEqual([{ group: 'g', topic: 't', lag: 0, pending: 0 }]);
    await b.close();
  });

  it('an async consumers declaration is validated when the module starts', async () => {
    const b = bus().module({ ...base, consumers: async () => ({ c: { topics: 't' as never, events: ['a.b'] } }) });
    await expect(b.start()).rejects.toThrow('[bus] modules.tasks.consumers.c.topics must be a non-empty array of strings, got "t"');
    await b.close();
  });

  it('start refuses an unknown module name', async () => {
    const b = bus().module(base);
    await expect(b.start({ modules: ['billing'] })).rejects.toThrow('[bus] modules has no module "billing" (registered: tasks), got "billing"');
    await b.close();
  });
});
