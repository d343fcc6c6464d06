// Core is the spec plus the engine: no process supervision, no HTTP server, no wire format of another
// system. Those live in @bus/runtime and @bus/hyperf-compat.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as core from '../src/index.js';

const src = new URL('../src/', import.meta.url).pathname;
const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));

describe('@bus/core boundaries', () => {
  it('imports neither node:child_process nor node:http', () => {
    const offenders = files(src).filter((f) => /from ['"](node:)?(child_process|http|https)['"]/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('exports no process runtime and no PHP compatibility (moved to @bus/runtime and @bus/hyperf-compat)', () => {
    const moved = ['supervise', 'runWorker', 'closeOnSignals', 'healthServer', 'answerSupervisor', 'defineConfig', 'createBusFromConfig', 'hyperfMessagebusCodec', 'phpSerialize', 'phpUnserialize'];
    expect(moved.filter((name) => name in core)).toEqual([]);
  });
});
