import { packageBuild } from '../../tsup.shared';

// shims: import.meta.url in the CJS build, to find the shipped migrations/ folder.
export default packageBuild(undefined, { shims: true });
