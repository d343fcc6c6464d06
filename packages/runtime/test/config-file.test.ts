import { describe, expect, it } from 'vitest';
import { memoryTransport } from '@bus/core';
import { createBusFromConfig, defineConfig, resolveConfig } from '../src/index.js';

type Events = { 'job.created': { n: number } };

const module = {
  name: 'jobs',
  consumers: { work: { topics: ['jobs'], events: ['job.created' as const] } },
  handler: () => {},
};

describe('defineConfig / resolveConfig', () => {
  it('fills the process settings with their defaults', async () => {
    const config = defineConfig<Events>({ transports: { memory: memoryTransport() }, modules: [{ ...module, drainTimeoutMs: 2000 }] });
    const resolved = await resolveConfig(config);
    expect(resolved.modules).toEqual([
      { name: 'jobs', processes: 1, restartDelayMs: 1000, maxRestartDelayMs: 30_000, killTimeoutMs: 17_000, drainTimeoutMs: 2000, health: undefined },
    ]);
  });

  it('accepts a (possibly async) function and a module namespace with a default export', async () => {
    const config = defineConfig<Events>(async () => ({ transports: { memory: memoryTransport() }, modules: [{ ...module, processes: 3 }] }));
    const resolved = await resolveConfig({ default: config });
    expect(resolved.modules[0]?.processes).toBe(3);
  });

  it('names the bad key', async () => {
    const transports = { memory: memoryTransport() };
    await expect(resolveConfig({ transports, modules: [{ ...module, processes: 0 }] })).rejects.toThrow(
      '[bus/runtime] config.modules[0].processes must be an integer from 1 to 1024, got 0',
    );
    await expect(resolveConfig({ transports, modules: [module, module] })).rejects.toThrow('[bus/runtime] config.modules[1].name is used by two modules, got "jobs"');
    await expect(resolveConfig({ transports, modules: [{ ...module, health: {} as { port: number } }] })).rejects.toThrow(
      '[bus/runtime] config.modules[0].health.port must be set',
    );
    await expect(resolveConfig({ modules: [] } as never)).rejects.toThrow('[bus/runtime] config.transports must be an object');
  });

  it('rejects misspelt keys of the config and of its modules, with the path and the likely key', async () => {
    const transports = { memory: memoryTransport() };
    await expect(resolveConfig({ transports, modules: [{ ...module, procesess: 4 } as never] })).rejects.toThrow(
      '[bus/runtime] config.modules[0].procesess is not an option; did you mean "processes"?, got 4',
    );
    await expect(resolveConfig({ transports, modules: [{ ...module, concurency: 4 } as never] })).rejects.toThrow(
      '[bus/runtime] config.modules[0].concurency is not an option; did you mean "concurrency"?, got 4',
    );
    await expect(resolveConfig({ transports, modules: [module], defaultTransprot: 'm' } as never)).rejects.toThrow(
      '[bus/runtime] config.defaultTransprot is not an option; did you mean "defaultTransport"?, got "m"',
    );
    await expect(resolveConfig({ transports, modul: [module] } as never)).rejects.toThrow('[bus/runtime] config.modul is not an option; did you mean "modules"?');
  });

  it('createBusFromConfig registers the modules (without the process settings) on a working bus', async () => {
    const got: number[] = [];
    const bus = createBusFromConfig(
      defineConfig<Events>({
        transports: { memory: memoryTransport() },
        modules: [{ ...module, processes: 2, restartDelayMs: 10, health: { port: 0 }, pollIntervalMs: 10, handler: ({ payload }) => void got.push(payload.n) }],
      }),
    );
    await bus.start();
    await bus.publish('jobs', 'job.created', { n: 7 });
    const deadline = Date.now() + 2000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await bus.close();
    expect(got).toEqual([7]);
  });
});
