// kcat (librdkafka's command-line client), a Kafka client written by others, for interop tests.
import { spawn } from 'node:child_process';
import { BROKERS } from './kafka.js';

/** Runs kcat; resolves its stdout. */
export function kcat(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', ['-b', BROKERS.join(','), '-q', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`kcat ${args.join(' ')} exited ${code}: ${err}`));
    });
    child.stdin.end(input ?? '');
  });
}

export interface KcatRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  payload: string | null;
  headers?: string[];
}

/** Every record of a topic, read by kcat as JSON envelopes (`-J`). */
export async function kcatRead(topic: string): Promise<KcatRecord[]> {
  const out = await kcat(['-C', '-J', '-e', '-o', 'beginning', '-t', topic]);
  return out
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as KcatRecord);
}

export const headersOf = (r: KcatRecord): Record<string, string> => {
  const h: Record<string, string> = {};
  const list = r.headers ?? [];
  for (let i = 0; i < list.length; i += 2) h[list[i] as string] = list[i + 1] as string;
  return h;
};
