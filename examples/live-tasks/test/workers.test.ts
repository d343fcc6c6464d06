import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const dir = fileURLToPath(new URL('..', import.meta.url));

// The example as users run it (`pnpm start --transport redis`): the tasks module from bus.config.ts as
// 2 worker processes under the supervisor, progress shared in Redis. Uses the built packages (dist).
describe('live-tasks on Redis with 2 worker processes', () => {
  it('completes the daily task for lina and wang, and exits 0 with its workers', async () => {
    const child = spawn(process.execPath, ['--import', TSX, 'src/main.ts', '--transport', 'redis'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    clearTimeout(timer);
    expect(code, err).toBe(0);
    expect(out).toMatch(/module tasks running as 2 worker processes on redis \(pids \d+, \d+\)/);
    expect(out).toContain('task daily-live-60min-100yuan completed: lina on 2026-11-28 (75 min live, 120 yuan)');
    expect(out).toContain('task daily-live-60min-100yuan completed: wang on 2026-11-28 (60 min live, 100 yuan)');
    expect(out.match(/completed:/g)).toHaveLength(2);
  });
});
