import { existsSync } from 'node:fs';
import { extname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EventMap } from '@bus/core';
import { type BusConfigInput, type ResolvedConfig, resolveConfig } from '@bus/runtime';
import { UsageError } from './usage.js';

/** File names `bus` looks for, in this order, when no `--config` is given. */
export const CONFIG_FILES = ['bus.config.ts', 'bus.config.mts', 'bus.config.cts', 'bus.config.js', 'bus.config.mjs', 'bus.config.cjs'] as const;

/** The first of {@link CONFIG_FILES} in `cwd`, or undefined. */
export function findConfig(cwd: string = process.cwd()): string | undefined {
  for (const name of CONFIG_FILES) {
    const path = join(cwd, name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** A loaded config file and where it came from. */
export interface LoadedConfig<M extends EventMap = EventMap> extends ResolvedConfig<M> {
  /** Absolute path of the file. */
  path: string;
}

/**
 * Loads `bus.config.ts` (or `.mts`, `.cts`, `.js`, `.mjs`, `.cjs`): `path`, else `$BUS_CONFIG`, else the
 * first of {@link CONFIG_FILES} in `cwd`. TypeScript files are loaded with tsx (`tsImport`), without
 * a build step. The default export may be a config or a (possibly async) function returning one.
 *
 * @throws {UsageError} when there is no such file
 * @throws {ConfigError} when the config is invalid (the message names the key)
 */
export async function loadConfig<M extends EventMap = EventMap>(path?: string, cwd: string = process.cwd()): Promise<LoadedConfig<M>> {
  const given = path ?? process.env.BUS_CONFIG;
  let file: string | undefined;
  if (given) {
    file = isAbsolute(given) ? given : resolve(cwd, given);
    if (!existsSync(file)) throw new UsageError(`config file ${file} does not exist`);
  } else {
    file = findConfig(cwd);
    if (!file) throw new UsageError(`no config file in ${cwd} (looked for ${CONFIG_FILES.join(', ')}); pass --config <path>`);
  }
  let exported: unknown;
  try {
    const url = pathToFileURL(file).href;
    if (/^\.[cm]?ts$/.test(extname(file))) {
      const { tsImport } = await import('tsx/esm/api');
      exported = await tsImport(url, import.meta.url);
    } else {
      exported = await import(url);
    }
  } catch (error) {
    throw new Error(`[bus/cli] could not load ${file}: ${(error as Error)?.message ?? error}`, { cause: error });
  }
  const ns = exported as { default?: unknown };
  if (ns.default === undefined) throw new Error(`[bus/cli] ${file} has no default export (export default defineConfig({ ... }))`);
  const resolved = await resolveConfig<M>(ns as { default: BusConfigInput<M> });
  return { ...resolved, path: file };
}
