import { ConfigError } from '@bus/core';
import { type ExpositionSource, metricsHandler, prometheus, startMetricsServer } from '../src/index.js';
import { createServer } from 'node:http';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

describe('startMetricsServer', () => {
  it('serves the registry on /metrics, 404 elsewhere, 405 for other methods', async () => {
    const registry = new Registry();
    prometheus({ registry }).lag({ transport: 'memory', group: 'g', topic: 't' }, 7);
    await using server = await startMetricsServer({ port: 0, host: '127.0.0.1', registry });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const response = await fetch(server.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(registry.contentType);
    expect(await response.text()).toContain('messagebus_consumer_lag{transport="memory",group="g",topic="t"} 7');
    expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
    const head = await fetch(server.url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('closes idempotently, even with a keep-alive connection open', async () => {
    const server = await startMetricsServer({ port: 0, host: '127.0.0.1', registry: new Registry(), path: '/m' });
    expect(server.url.endsWith('/m')).toBe(true);
    await fetch(server.url, { keepalive: true }).then((r) => r.text());
    const started = Date.now();
    await Promise.all([server.close(), server.close()]);
    await server.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(server.server.listening).toBe(false);
  });

  it('rejects invalid options with the option path', async () => {
    await expect(startMetricsServer({ port: 70_000 })).rejects.toThrow(ConfigError);
    await expect(startMetricsServer({ port: -1 })).rejects.toThrow('[bus/prometheus] port must be an integer from 0 to 65535, got -1');
    await expect(startMetricsServer({ path: 'metrics' })).rejects.toThrow('[bus/prometheus] path must start with "/"');
  });

  it('rejects when the port is taken', async () => {
    await using first = await startMetricsServer({ port: 0, host: '127.0.0.1', registry: new Registry() });
    const port = Number(new URL(first.url).port);
    await expect(startMetricsServer({ port, host: '127.0.0.1', registry: new Registry() })).rejects.toThrow(/EADDRINUSE/);
  });
});

describe('metricsHandler', () => {
  it('answers 500 with the reason when collecting fails', async () => {
    const failing: ExpositionSource = { contentType: 'text/plain', metrics: () => Promise.reject(new Error('collector broke')) };
    const server = createServer(metricsHandler(failing));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const response = await fetch(`http://127.0.0.1:${port}/anything`);
      expect(response.status).toBe(500);
      expect(await response.text()).toContain('[bus/prometheus] collecting metrics failed: collector broke');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
