import { describe, it } from 'vitest';
import { memoryBroker, memoryTransport } from '../src/index.js';
import { runTransportConformance } from '../src/testing/index.js';

describe('memoryTransport', () => {
  // One broker for every instance: the suite's two-instance tests see the same topics and groups.
  const broker = memoryBroker();
  runTransportConformance({ describe, it }, { createTransport: () => memoryTransport({ broker }), pollIntervalMs: 50, waitMs: 5000, stress: 4 });
});
