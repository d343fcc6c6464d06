import { defineConfig, type Options } from 'tsup';

/** The build every package shares: ESM + CJS with their own declarations, for Node 22. */
export function packageBuild(entry: Options['entry'] = { index: 'src/index.ts' }, extra: Options = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node22',
    splitting: false,
    ...extra,
  });
}
