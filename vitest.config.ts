import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// The brokers `scripts/services.sh up` started or found (REDIS_URL, KAFKA_BROKERS); the caller's own win.
const servicesEnv = src('./.cache/services.env');
if (existsSync(servicesEnv)) {
  for (const line of readFileSync(servicesEnv, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m?.[1] && process.env[m[1]] === undefined) process.env[m[1]] = m[2];
  }
}

// Tests import the packages' sources, so a test run never reads a stale build.
const alias = {
  '@bus/core/testing': src('./packages/core/src/testing/index.ts'),
  '@bus/core/kit': src('./packages/core/src/kit/index.ts'),
  '@bus/core': src('./packages/core/src/index.ts'),
  '@bus/redis-stream': src('./packages/redis-stream/src/index.ts'),
  '@bus/kafka-platformatic': src('./packages/kafka-platformatic/src/index.ts'),
  '@bus/kafka': src('./packages/kafka/src/index.ts'),
  '@bus/prometheus': src('./packages/prometheus/src/index.ts'),
  '@bus/otel': src('./packages/otel/src/index.ts'),
  '@bus/cli': src('./packages/cli/src/index.ts'),
  '@bus/runtime': src('./packages/runtime/src/index.ts'),
  '@bus/hyperf-compat': src('./packages/hyperf-compat/src/index.ts'),
  '@bus/board': src('./packages/board/src/index.ts'),
  '@bus/outbox-postgres': src('./packages/outbox-postgres/src/index.ts'),
};

/** Whether this Node.js is at least `major.minor`. */
const nodeAtLeast = (major: number, minor: number) => {
  const [ma = 0, mi = 0] = process.versions.node.split('.').map(Number);
  return ma > major || (ma === major && mi >= minor);
};

// vitest 5: an inline project inherits the root config (`extends` defaults to true), the alias included,
// and, setting no Vite option of its own, shares the root's Vite server (each file transformed once).
const project = (name: string, dir: string) => ({
  test: {
    name,
    include: [`${dir}/test/**/*.test.ts`],
    // Type tests (`*.test-d.ts`) fail the run when a wrong event name or payload compiles.
    typecheck: { enabled: true, include: [`${dir}/test/**/*.test-d.ts`], tsconfig: `${dir.replace('/*', '/live-tasks')}/tsconfig.json` },
  },
});

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      project('core', 'packages/core'),
      project('redis-stream', 'packages/redis-stream'),
      project('kafka', 'packages/kafka'),
      // @platformatic/kafka needs Node >= 22.22: on an older Node the project is left out of the run
      // (not skipped as passed); CI runs the full suite on Node 26 (scripts/node.sh).
      ...(nodeAtLeast(22, 22) ? [project('kafka-platformatic', 'packages/kafka-platformatic')] : []),
      project('prometheus', 'packages/prometheus'),
      project('otel', 'packages/otel'),
      project('cli', 'packages/cli'),
      project('runtime', 'packages/runtime'),
      project('hyperf-compat', 'packages/hyperf-compat'),
      project('board', 'packages/board'),
      project('outbox-postgres', 'packages/outbox-postgres'),
      project('examples', 'examples/*'),
      // The repository as a user meets it: README examples, the packed tarballs, the test command.
      { test: { name: 'repo', include: ['test/**/*.test.ts'] } },
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 10_000,
    fileParallelism: false,
  },
});
