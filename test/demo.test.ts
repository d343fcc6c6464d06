import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

describe('pnpm demo (scripts/demo.sh)', () => {
  it('says first what it runs on, then tells the story, without build output', async () => {
    const { stdout, stderr } = await exec('bash', ['scripts/demo.sh'], { cwd: root, timeout: 180_000 });
    expect(stdout.split('\n')).toEqual([
      'live-tasks on the in-memory transport: one process, no broker (--transport redis or kafka for a real one)',
      'published 14 events to "live"',
      'task daily-live-60min-100yuan completed: lina on 2026-11-28 (75 min live, 120 yuan)',
      'task daily-live-60min-100yuan completed: wang on 2026-11-28 (60 min live, 100 yuan)',
      '',
    ]);
    expect(stderr).toBe('');
  }, 200_000);
});
