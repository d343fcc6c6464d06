import { describe, it } from 'vitest';
import { memoryTransport } from '../src/index.js';
import { runTransportConformance } from '../src/testing/index.js';

describe('memoryTransport', () => {
  runTransportConformance({ describe, it }, { createTransport: () => memoryTransport(), pollIntervalMs: 50, waitMs: 5000 });
});
