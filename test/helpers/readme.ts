import { readFileSync } from 'node:fs';

/**
 * The code blocks of a README that carry a `<!-- readme-example: NAME -->` comment on the line
 * before them, by name: what the README shows is what the tests run.
 */
export function readmeExamples(path: string): Record<string, { lang: string; code: string }> {
  const text = readFileSync(path, 'utf8');
  const out: Record<string, { lang: string; code: string }> = {};
  const re = /<!-- readme-example: ([\w-]+) -->\n```(\w+)\n([\s\S]*?)\n```/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out[m[1] as string] = { lang: m[2] as string, code: `${m[3]}\n` };
  return out;
}

export type TransportName = 'memory' | 'redis' | 'kafka';

/** The shared brokers of the test environment (`scripts/services.sh up` says which). */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const KAFKA_BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';

/**
 * The README's own swap: `memoryTransport()` becomes `redisStream({ url })` or `kafka({ brokers })`
 * (imported from their packages), and the topic `'live'` a fresh one, as the shared brokers hold
 * other runs' groups.
 */
export function onTransport(code: string, transport: TransportName, topic: string, style: 'esm' | 'cjs'): string {
  let out = code.replaceAll("'live'", `'${topic}'`);
  if (transport === 'memory') return out;
  const [pkg, factory, expr] =
    transport === 'redis'
      ? ['@bus/redis-stream', 'redisStream', `redisStream({ url: ${JSON.stringify(REDIS_URL)} })`]
      : ['@bus/kafka', 'kafka', `kafka({ brokers: ${JSON.stringify(KAFKA_BROKERS)}, logLevel: 'warn' })`];
  if (!out.includes('memoryTransport()')) throw new Error('the README example no longer uses memoryTransport()');
  out = out.replace('memoryTransport()', expr);
  const importLine = style === 'esm' ? `import { ${factory} } from '${pkg}';\n` : `const { ${factory} } = require('${pkg}');\n`;
  return importLine + out;
}
