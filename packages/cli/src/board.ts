import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBoard } from '@bus/board';
import { consoleLogger } from '@bus/core';
import { createBusFromConfig } from '@bus/runtime';
import { type LoadedConfig, loadConfig } from './load.js';
import { selectModules } from './run.js';
import { intOption, logLevel, parse, UsageError } from './usage.js';

/** `bus board --help`. */
export const BOARD_HELP = `Usage: bus board [--port <n>] [--host <addr>] [--module <name>]... [--token <t>]

Serves the web board (@bus/board) of the config's bus: every module, its consumers, topics and
events, lag, pending and dead letters per topic (refreshing live), the dead letters of a topic with
their headers and payload, and a search by message id or position. Prints the URL, then serves
until SIGINT or SIGTERM.

Read-only unless an access token is given (--token, or $BUS_BOARD_TOKEN): whoever signs in with it
may replay and delete dead letters. Listens on 127.0.0.1 unless --host says otherwise.

Options:
  -p, --port <n>        port (default 7300; 0 picks a free one)
      --host <addr>     address to listen on (default 127.0.0.1)
  -m, --module <name>   only these modules (repeatable)
      --token <t>       access token enabling replay and delete (at least 12 characters)`;

/** What `bus board` needs, parsed from its command line. */
export interface BoardCommandOptions {
  port: number;
  host: string;
  modules: readonly string[] | undefined;
  token: string | undefined;
}

/** A running `bus board`. */
export interface RunningBoard {
  url: string;
  /** Stops serving and closes the bus's transports. */
  close(): Promise<void>;
}

/** Parses `bus board` options (besides the common ones). */
export function boardOptions(values: { port?: string; host?: string; module?: string[]; token?: string }): BoardCommandOptions {
  const port = values.port === '0' ? 0 : intOption('board', 'port', values.port, 7300);
  if (port > 65_535) throw new UsageError(`--port must be at most 65535, got ${port}`, 'board');
  const token = values.token ?? process.env.BUS_BOARD_TOKEN;
  if (token !== undefined && token.length < 12) throw new UsageError('--token must have at least 12 characters', 'board');
  return { port, host: values.host ?? '127.0.0.1', modules: values.module, token: token || undefined };
}

/** Starts the board's HTTP server for a loaded config. The bus is created, not started: nothing is consumed. */
export async function startBoard(loaded: LoadedConfig, options: BoardCommandOptions): Promise<RunningBoard> {
  const names = selectModules(loaded, options.modules ? [...options.modules] : undefined);
  const bus = createBusFromConfig(loaded.config);
  const modules = (loaded.config.modules ?? []).filter((m) => names.includes(m.name));
  const loopback = ['127.0.0.1', 'localhost', '::1'].includes(options.host) || options.host.startsWith('127.');
  const board = createBoard({
    bus,
    modules,
    ...(options.token ? { token: options.token } : {}),
    // On loopback, answer loopback names only: a page of another site cannot read the board through DNS rebinding.
    ...(loopback ? { allowedHosts: ['127.0.0.1', 'localhost', '::1', options.host] } : {}),
  });
  const server = createServer(board.handle);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => resolve());
    });
  } catch (error) {
    await bus.close();
    throw new Error(`[bus/cli] board could not listen on ${options.host}:${options.port}: ${(error as Error).message}`, { cause: error });
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}/`,
    close() {
      closing ??= (async () => {
        board.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await bus.close();
      })();
      return closing;
    },
  };
}

/** `bus board`: serves until SIGINT/SIGTERM, then resolves with 0. */
export async function boardCommand(loaded: LoadedConfig, options: BoardCommandOptions, out: (text: string) => void): Promise<number> {
  const running = await startBoard(loaded, options);
  out(`bus board: ${running.url} (${options.token ? 'actions enabled with the access token' : 'read-only'})`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await running.close();
  return 0;
}

/** `bus board [options]` from its arguments (after "board"). */
export async function boardMain(argv: readonly string[], out: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('board', argv, {
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    module: { type: 'string', short: 'm', multiple: true },
    token: { type: 'string' },
  });
  if (values.help) {
    out(BOARD_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, 'board');
  const options = boardOptions(values);
  const loaded = await loadConfig(values.config);
  const logger = loaded.config.logger ?? consoleLogger(logLevel('board', values['log-level'], 'warn'));
  return boardCommand({ ...loaded, config: { ...loaded.config, logger } }, options, out);
}
