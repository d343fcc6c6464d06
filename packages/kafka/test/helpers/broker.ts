// The broker helpers every Kafka driver's tests share (no client library here: @bus/kafka-platformatic's
// tests import this file too).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '@bus/core/testing';

const run = promisify(execFile);

/** scripts/kafka.sh of the repository. */
export const KAFKA_SH = fileURLToPath(new URL('../../../../scripts/kafka.sh', import.meta.url));

export interface DedicatedBroker {
  brokers: string[];
  /** `kafka.sh restart-node 1`: clean stop, start on the same data, wait until it answers. */
  restart(): Promise<void>;
  /** `kill-node 1` (SIGKILL) then `start-node 1`. */
  crash(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the node and deletes its data. */
  dispose(): Promise<void>;
}

/**
 * A private single-node broker on free ports and its own run directory (scripts/kafka.sh with
 * BUS_KAFKA_RUN_DIR / BUS_KAFKA_PORT / BUS_KAFKA_CONTROLLER_PORT), for tests that stop the broker:
 * the shared broker is never restarted. `env` adds kafka.sh variables (e.g. the secured listeners).
 */
export async function startDedicatedBroker(ports?: { port: number; controller: number }, env: Record<string, string> = {}): Promise<DedicatedBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'bus-kafka-test-'));
  const port = ports?.port ?? (await freePort());
  let controller = ports?.controller ?? (await freePort());
  while (controller === port) controller = await freePort();
  const shEnv = {
    ...process.env,
    ...env,
    BUS_KAFKA_RUN_DIR: dir,
    BUS_KAFKA_PORT: String(port),
    BUS_KAFKA_CONTROLLER_PORT: String(controller),
    BUS_KAFKA_HEAP_OPTS: process.env.BUS_KAFKA_HEAP_OPTS ?? '-Xmx384m -Xms128m',
    BUS_KAFKA_JVM_OPTS: process.env.BUS_KAFKA_JVM_OPTS ?? '-XX:+UseSerialGC -XX:TieredStopAtLevel=1',
    BUS_KAFKA_LOG_LEVEL: 'WARN',
  };
  const sh = async (...args: string[]) => {
    try {
      await run('bash', [KAFKA_SH, ...args], { env: shEnv, timeout: 180_000 });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`kafka.sh ${args.join(' ')} failed: ${e.stderr?.slice(-2000) ?? e.message}`);
    }
  };
  await sh('start', '1');
  return {
    brokers: [`127.0.0.1:${port}`],
    restart: () => sh('restart-node', '1'),
    crash: async () => {
      await sh('kill-node', '1');
      await sh('start-node', '1');
    },
    stop: () => sh('stop-node', '1'),
    start: () => sh('start-node', '1'),
    async dispose() {
      await sh('stop').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` every 25 ms; throws after `ms`. */
export async function waitFor(what: string, predicate: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(25);
  }
}
