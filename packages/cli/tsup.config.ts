import { packageBuild } from '../../tsup.shared';

export default packageBuild(
  { index: 'src/index.ts', bin: 'src/bin.ts' },
  // `import.meta.url` in the CJS build (to find bin.js and to load TypeScript configs with tsx).
  { dts: { entry: { index: 'src/index.ts' } }, shims: true },
);
