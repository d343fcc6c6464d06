import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// Tests import the packages' sources, so a test run never reads a stale build.
const alias = {
  '@bus/core/testing': src('./packages/core/src/testing/index.ts'),
  '@bus/core': src('./packages/core/src/index.ts'),
};

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      { resolve: { alias }, test: { name: 'core', include: ['packages/core/test/**/*.test.ts'], typecheck: { enabled: true, include: ['packages/core/test/**/*.test-d.ts'] } } },
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 10_000,
    fileParallelism: false,
  },
});
