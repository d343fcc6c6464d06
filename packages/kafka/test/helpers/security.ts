// Security test helpers of the Kafka drivers (@bus/kafka-platformatic's tests import this file too); the
// ones every driver shares are in test/helpers/security.ts at the root.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BusError, type PublishResult } from '@bus/core';
import { stringify, type TestPki } from '../../../../test/helpers/security.js';
import { startDedicatedBroker } from './broker.js';

export { capturingLogger, makePki, silentServer, stringify, type TestPki } from '../../../../test/helpers/security.js';

/**
 * One private broker (scripts/kafka.sh on the given ports, its own run directory) with a PLAINTEXT,
 * a SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256 and -512; `user` / `password`) and an SSL listener whose
 * certificate `pki` made.
 */
export async function startSecuredBroker(
  ports: { plain: number; controller: number; sasl: number; ssl: number },
  pki: TestPki,
  user: string,
  password: string,
): Promise<{ brokers: string[]; stop(): Promise<void> }> {
  const keystore = join(pki.dir, 'keystore.pem');
  writeFileSync(keystore, Buffer.concat([readFileSync(pki.keyFile), readFileSync(pki.certFile)]));
  const broker = await startDedicatedBroker(
    { port: ports.plain, controller: ports.controller },
    {
      BUS_KAFKA_SASL_PORT: String(ports.sasl),
      BUS_KAFKA_SASL_USERS: `${user}:${password}`,
      BUS_KAFKA_SASL_SCRAM: '1',
      BUS_KAFKA_SSL_PORT: String(ports.ssl),
      BUS_KAFKA_SSL_KEYSTORE: keystore,
    },
  );
  let stopped = false;
  return {
    brokers: broker.brokers,
    async stop() {
      if (stopped) return;
      stopped = true;
      await broker.dispose();
    },
  };
}

/**
 * `failure(results)`: the error of a publish expected to fail; `caught(promise)`: the BusError a promise
 * rejects with. Both keep the error's text in `seen`, for the tests that grep every error for secrets.
 */
export function errorRecorder(seen: string[]): {
  failure(results: PublishResult[]): BusError;
  caught(promise: Promise<unknown>): Promise<BusError>;
} {
  return {
    failure(results) {
      const r = results[0];
      if (!r || r.ok) throw new Error('publish was expected to fail');
      seen.push(stringify(r.error));
      return r.error;
    },
    async caught(promise) {
      const error = await promise.then(
        () => {
          throw new Error('expected a rejection');
        },
        (e: unknown) => e,
      );
      seen.push(stringify(error));
      if (!BusError.isInstance(error)) throw error;
      return error;
    },
  };
}
