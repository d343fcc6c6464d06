import { consoleLogger, type Logger, noopMetrics, redactUrl, silentLogger, type Transport } from '@bus/core';
import { CommandTimeoutError, Deadline, EXIT, exitCodeOf, explain, recordingLogger } from './failure.js';
import { exitOnEarlySignals } from '@bus/runtime';
import { BOARD_HELP, boardMain } from './board.js';
import { type DeadLetter, deadLetterTopicOf, listDeadLetters, parseDuration, type Progress, replayDeadLetters } from './dlq.js';
import { type LoadedConfig, loadConfig } from './load.js';
import { publishCommand } from './publish.js';
import { runInline, runModules, selectModules } from './run.js';
import { causeOf, formatStatus, formatTable, readStatus, type StatusRow } from './status.js';
import { intOption, logLevel, parse, UsageError } from './usage.js';

const COMMON_HELP = `
Options of every command:
  -c, --config <path>   config file (default: $BUS_CONFIG, else bus.config.{ts,mts,cts,js,mjs,cjs} here)
      --log-level <l>   debug | info | warn | error (publish, status, dlq: print the transports' log
                        lines as they come; without it a failure quotes the last ones)
      --timeout <ms>    publish, status, dlq: give up this long after the start when the broker has
                        not answered (default $BUS_TIMEOUT_MS, else 8000; dlq starts it again
                        with each message)
  -h, --help            this help

Exit codes:
  0     ok (bus run: stopped by SIGTERM / SIGINT after draining)
  1     error: invalid config, the broker refused the operation, a module could not start
  2     usage error, or no config file
  3     a broker could not be reached, refused the credentials, or did not answer within --timeout
  130   bus run: a second SIGINT (143: SIGTERM) stopped it without waiting for the drain
A failure prints the error, its causes, what the transports reported, and what to check.`;

export const HELP: Record<string, string> = {
  '': `bus — run and inspect a bus from its config file (bus.config.ts)

Usage: bus <command> [options]

Commands:
  run [--module <name>]...              run modules as supervised worker processes
  publish <topic> <event> <json>        publish one event
  status [--module <name>]...           lag, pending and dead letters per module, consumer and topic
  dlq list <topic> [--limit <n>]        show dead-lettered messages of <topic> (reads <topic>.dlq)
  dlq replay <topic> [--delay <d>]      send dead letters back to the topic they came from (later)
  board [--port <n>] [--token <t>]      web board: modules, lag, dead letters, replay with a click

Run "bus <command> --help" for a command's options.
${COMMON_HELP}`,
  run: `Usage: bus run [--module <name>]... [--inline] [--config <path>]

Starts the config's modules (all, or those named): each module as its \`processes\` worker processes
under a supervisor. A worker that dies is restarted after \`restartDelayMs\` (doubling while it keeps
dying, up to \`maxRestartDelayMs\`). SIGTERM or SIGINT drains: workers stop fetching, finish running
handlers within \`drainTimeoutMs\`, acknowledge, close, exit 0; a worker still running after
\`killTimeoutMs\` is killed (the broker redelivers its unacknowledged messages). A second signal kills at once.
A module with \`health: { port }\` gets GET /live and GET /ready (503 until all its workers
subscribed, and while draining). The config's \`supervisor\` hook runs in this (parent) process, its
\`worker\` hook in each worker (e.g. one /metrics for all workers with @bus/prometheus).

Options:
  -m, --module <name>   a module to run (repeat, or comma-separate); default: all
      --inline          run the modules in this process, no workers (small apps, debugging)
${COMMON_HELP}`,
  publish: `Usage: bus publish <topic> <event> <json> [--key <key>] [--transport <name>] [--header name=value]...

Publishes one event with the config's bus (codec, source) and prints {topic, event, transport, id, position}.
<json> is the payload; "-" reads it from stdin.

Options:
  -k, --key <key>          ordering / partition key
  -t, --transport <name>   a transport of the config (default: its defaultTransport)
  -H, --header name=value  a header (repeatable)
${COMMON_HELP}`,
  status: `Usage: bus status [--module <name>]... [--json]

Prints, per module, consumer (group <module>-<consumer>) and topic: LAG (not yet delivered to the
group), PENDING (delivered, not acknowledged; Redis), DEAD-LETTERS (messages of the dead-letter
topic not yet replayed by "bus dlq replay"), read with the transport's lag(), and a STATE: ok,
behind, dead letters, or unreadable. Exits 0 only when every number could be read.

Options:
  -m, --module <name>   only these modules (repeatable)
      --json            one JSON object per line
${COMMON_HELP}`,
  dlq: `Usage: bus dlq list <topic> [--limit <n>] [--transport <name>] [--json]
       bus dlq replay <topic> [--limit <n>] [--delay <duration>] [--transport <name>]

<topic> is the origin topic (its dead letters are in <topic>.dlq) or the dead-letter topic itself.

  list     shows dead letters (reason, error, attempts, origin, group), read with a throwaway
           consumer group from the earliest message; nothing is consumed.
  replay   sends each dead letter not replayed yet back to its origin topic (same id, key, payload,
           headers without bus-dlq-*, plus bus-replayed-at), and acknowledges it in the consumer
           group "bus-dlq-replay" once stored. Every consumer group of the origin topic gets it again.

Options:
  -n, --limit <n>          at most n messages (default: list 20, replay all)
  -t, --transport <name>   a transport of the config (default: its defaultTransport)
      --json               (list) one JSON object per line
      --wait <ms>          longest wait for the first message (default: --timeout)

On a terminal, replay and list show their progress (n/total) on stderr.
      --delay <duration>   (replay) deliver the copies no sooner than this from now: 500ms, 30s, 10m, 1h
                           (the transport's delayed delivery)
${COMMON_HELP}`,
};
HELP.board = `${BOARD_HELP}
${COMMON_HELP}`;
HELP['dlq list'] = HELP.dlq as string;
HELP['dlq replay'] = HELP.dlq as string;

export interface MainOptions {
  /** Where results go. @default process.stdout */
  stdout?: (text: string) => void;
  /** Where errors and help for errors go. @default process.stderr */
  stderr?: (text: string) => void;
  /**
   * `bus run`: drain on SIGTERM / SIGINT and exit the process with the run's code; a signal while the
   * config still loads exits 0 at once. @default true
   */
  handleSignals?: boolean;
}

/** What a command other than `run` works with: its deadline and what the transports reported. */
interface Session {
  deadline: Deadline;
  /** Warnings and errors the transports logged (see {@link recordingLogger}). */
  reported: string[];
  /** Transports to close when the deadline passes. */
  transports: Transport[];
}

/**
 * Default of `--timeout`, counted from the process's start: with closing, a command that gets no
 * answer ends within 10 s.
 */
export const DEFAULT_TIMEOUT_MS = 8000;

/** Past the deadline, how long closing the transports may take before `bus` exits anyway. */
const CLOSE_AFTER_DEADLINE_MS = 500;

/**
 * The `bus` command line. Resolves with the exit code (see the README's table): 0 ok, 1 error,
 * 2 usage error, 3 broker unreachable / credentials refused / no answer within `--timeout`.
 * `bus run` resolves only when it could not start (the process exits when it stops).
 */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const out = options.stdout ?? ((text: string) => process.stdout.write(`${text}\n`));
  const err = options.stderr ?? ((text: string) => process.stderr.write(`${text}\n`));
  const [command = '', ...rest] = argv;
  let session: Session | undefined;
  try {
    if (command === 'publish' || command === 'status' || command === 'dlq') {
      session = { deadline: new Deadline(command, timeoutOf(command, rest)), reported: [], transports: [] };
    }
    switch (command) {
      case '':
      case '-h':
      case '--help':
      case 'help':
        out(HELP[rest[0] ?? ''] ?? (HELP[''] as string));
        return command === '' ? 2 : 0;
      case 'run':
        return await run(rest, out, err, options.handleSignals ?? true);
      case 'publish':
        return await bounded(session as Session, publish(rest, out, session as Session));
      case 'status':
        return await bounded(session as Session, status(rest, out, err, session as Session));
      case 'dlq':
        return await bounded(session as Session, dlq(rest, out, err, session as Session));
      case 'board':
        return await boardMain(rest, out);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      err(`bus: ${error.message}\nRun "bus ${error.command ? `${error.command} ` : ''}--help" for usage.`);
      return EXIT.usage;
    }
    err(explain(error, session?.reported));
    if (process.env.BUS_DEBUG && error instanceof Error) err(redactUrl(error.stack ?? ''));
    return exitCodeOf(error);
  } finally {
    session?.deadline.clear();
  }
}

/** `--timeout <ms>` of a command line, read before the command parses it (the deadline starts first). */
function timeoutOf(command: string, argv: readonly string[]): number {
  const i = argv.findIndex((a) => a === '--timeout' || a.startsWith('--timeout='));
  if (i < 0) return process.env.BUS_TIMEOUT_MS ? intOption(command, 'timeout ($BUS_TIMEOUT_MS)', process.env.BUS_TIMEOUT_MS, DEFAULT_TIMEOUT_MS) : DEFAULT_TIMEOUT_MS;
  const value = argv[i]?.includes('=') ? argv[i]?.slice('--timeout='.length) : argv[i + 1];
  return intOption(command === 'dlq' ? `dlq ${argv[0] ?? ''}`.trim() : command, 'timeout', value, DEFAULT_TIMEOUT_MS);
}

/** The command, or a {@link CommandTimeoutError} once its deadline passes (its transports then closed, bounded). */
async function bounded(session: Session, work: Promise<number>): Promise<number> {
  try {
    return await Promise.race([work, session.deadline.promise]);
  } catch (error) {
    if (error instanceof CommandTimeoutError) {
      work.catch(() => {});
      const closing = Promise.allSettled(session.transports.map((t) => t.close()));
      await Promise.race([closing, new Promise((r) => setTimeout(r, CLOSE_AFTER_DEADLINE_MS).unref())]);
    }
    throw error;
  }
}

async function run(argv: readonly string[], out: (text: string) => void, err: (text: string) => void, handleSignals: boolean): Promise<number> {
  const { values, positionals } = parse('run', argv, {
    module: { type: 'string', short: 'm', multiple: true },
    inline: { type: 'boolean' },
    worker: { type: 'boolean' },
  });
  if (values.help) return help('run', out);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, 'run');
  // Before the first await: a stop request while the config loads is a clean exit (see exitOnEarlySignals).
  if (handleSignals) exitOnEarlySignals({ onSignal: (signal) => err(`bus: ${signal} received while starting; nothing to drain yet, exiting 0`) });
  const level = logLevel('run', values['log-level'], 'info');
  if (values.inline || values.worker) {
    const loaded = await loadConfig(values.config);
    return runInline(loaded, selectModules(loaded, values.module), { worker: values.worker === true, logLevel: level });
  }
  const supervisor = await runModules({
    ...(values.config ? { config: values.config } : {}),
    ...(values.module ? { modules: values.module } : {}),
    logLevel: level,
    handleSignals,
  });
  return supervisor.stopped;
}

async function publish(argv: readonly string[], out: (text: string) => void, session: Session): Promise<number> {
  const { values, positionals } = parse('publish', argv, {
    timeout: { type: 'string' },
    key: { type: 'string', short: 'k' },
    transport: { type: 'string', short: 't' },
    header: { type: 'string', short: 'H', multiple: true },
  });
  if (values.help) return help('publish', out);
  if (positionals.length !== 3) throw new UsageError(`expected <topic> <event> <json>, got ${positionals.length} argument(s)`, 'publish');
  const [topic, event, json] = positionals as [string, string, string];
  const loaded = withLogger(await loadConfig(values.config), values['log-level'], session);
  return publishCommand(
    loaded,
    { topic, event, json: json === '-' ? await readStdin() : json, key: values.key, transport: values.transport, headers: values.header },
    out,
  );
}

async function status(argv: readonly string[], out: (text: string) => void, err: (text: string) => void, session: Session): Promise<number> {
  const { values, positionals } = parse('status', argv, {
    timeout: { type: 'string' },
    module: { type: 'string', short: 'm', multiple: true },
    json: { type: 'boolean' },
  });
  if (values.help) return help('status', out);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, 'status');
  const loaded = withLogger(await loadConfig(values.config), values['log-level'], session);
  const rows = await readStatus(loaded, selectModules(loaded, values.module));
  if (values.json) for (const row of rows) out(JSON.stringify(row));
  else out(formatStatus(rows));
  const unreadable = rows.filter((r) => r.error !== undefined);
  if (unreadable.length === 0) return EXIT.ok;
  // Some numbers are missing: say why once, with what to check, and do not exit 0.
  const first = unreadable[0] as StatusRow;
  const failure = new Error(`[bus/cli] could not read ${unreadable.length} of ${rows.length} row(s) of bus status`, { cause: causeOf(first) ?? first.error });
  err(explain(failure, session.reported));
  return exitCodeOf(failure);
}

async function dlq(argv: readonly string[], out: (text: string) => void, err: (text: string) => void, session: Session): Promise<number> {
  const [sub = '', ...rest] = argv;
  if (sub === '--help' || sub === '-h') return help('dlq', out);
  if (sub === '' || sub.startsWith('-')) throw new UsageError('expected "list" or "replay"', 'dlq');
  if (sub !== 'list' && sub !== 'replay') throw new UsageError(`unknown dlq command "${sub}" (list, replay)`, 'dlq');
  const command = `dlq ${sub}`;
  const { values, positionals } = parse(command, rest, {
    limit: { type: 'string', short: 'n' },
    transport: { type: 'string', short: 't' },
    json: { type: 'boolean' },
    wait: { type: 'string' },
    timeout: { type: 'string' },
    delay: { type: 'string' },
  });
  if (values.help) return help(command, out);
  if (positionals.length !== 1) throw new UsageError(`expected one <topic>, got ${positionals.length}`, command);
  const topic = positionals[0] as string;
  const limit = intOption(command, 'limit', values.limit, sub === 'list' ? 20 : Number.MAX_SAFE_INTEGER);
  const waitMs = intOption(command, 'wait', values.wait, session.deadline.timeoutMs);
  let delayMs = 0;
  if (values.delay !== undefined) {
    if (sub !== 'replay') throw new UsageError('--delay is an option of "dlq replay"', command);
    try {
      delayMs = parseDuration(values.delay);
    } catch (error) {
      throw new UsageError(`--delay: ${(error as Error).message}`, command);
    }
  }
  const loaded = withLogger(await loadConfig(values.config), values['log-level'], session);
  const transports = loaded.config.transports;
  const names = Object.keys(transports);
  const name = values.transport ?? loaded.config.defaultTransport ?? (names.length === 1 ? names[0] : undefined);
  if (name === undefined) throw new UsageError(`the config has several transports (${names.join(', ')}) and no defaultTransport; pass --transport`, command);
  const transport = transports[name];
  if (!transport) throw new UsageError(`--transport must name a transport of the config (${names.join(', ')}), got "${name}"`, command);
  attach(transport, loaded);
  const bar = progressLine(sub === 'list' ? 'read' : 'replayed', values.json !== true);
  const progress: Progress = (done, expected) => {
    session.deadline.touch();
    bar.update(done, expected);
  };
  try {
    if (sub === 'list') {
      const letters = await listDeadLetters(transport, topic, limit, waitMs, progress, (error) =>
        err(`bus: warning: could not delete the consumer group this listing read with: ${redactUrl(error instanceof Error ? error.message : String(error))}`),
      );
      bar.done();
      if (values.json) for (const l of letters) out(JSON.stringify(l));
      else out(letters.length === 0 ? `no dead letters in ${deadLetterTopicOf(topic)}` : formatLetters(letters));
      return 0;
    }
    const result = await replayDeadLetters(
      transport,
      topic,
      limit,
      (l) => {
        if (values.json) out(JSON.stringify({ replayed: l.position, id: l.id, to: l.origin }));
      },
      waitMs,
      { delayMs, progress },
    );
    bar.done();
    const skipped = result.skipped ? `; skipped ${result.skipped} without a bus-dlq-topic header` : '';
    const later = delayMs > 0 ? `, delivered in ${values.delay}` : '';
    if (!values.json) out(`replayed ${result.replayed} dead letter(s) from ${deadLetterTopicOf(topic)}${later}${skipped}`);
    return 0;
  } finally {
    bar.done();
    await Promise.allSettled(Object.values(transports).map((t) => t.close()));
  }
}

/** `replayed 1200/10000` on stderr, rewritten in place at most 5 times a second, when stderr is a terminal. */
function progressLine(verb: string, enabled: boolean): { update(done: number, expected: number): void; done(): void } {
  const tty = enabled && process.stderr.isTTY === true;
  let last = 0;
  let shown = false;
  return {
    update: (done, expected) => {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 200 && done < expected) return;
      last = now;
      shown = true;
      process.stderr.write(`\r${verb} ${done}/${expected}`);
    },
    done: () => {
      if (!shown) return;
      shown = false;
      process.stderr.write('\r\x1b[K');
    },
  };
}

function formatLetters(letters: readonly DeadLetter[]): string {
  const cut = (s: string | undefined, n: number) => (s === undefined ? '-' : s.length > n ? `${s.slice(0, n - 1)}…` : s);
  return formatTable(
    ['POSITION', 'ID', 'EVENT', 'ORIGIN', 'GROUP', 'ATTEMPTS', 'ERROR', 'AT', 'REASON'],
    letters.map((l) => [
      l.position,
      l.id ?? '-',
      l.event ?? '-',
      l.originPosition ? `${l.origin}@${l.originPosition}` : (l.origin ?? '-'),
      l.group ?? '-',
      l.attempts === undefined ? '-' : String(l.attempts),
      l.error ?? '-',
      l.deadLetteredAt ?? '-',
      cut(l.reason, 80),
    ]),
  );
}

/**
 * Commands other than `run` keep the transports' warnings and errors for the failure report (and
 * print them as they come with `--log-level`, or through the config's own logger); the transports
 * are closed if the deadline passes.
 */
function withLogger(loaded: LoadedConfig, level: string | undefined, session: Session): LoadedConfig {
  // Without --log-level, the transports' retry chatter stays out of the way: a failure quotes it.
  const base = loaded.config.logger ?? (level === undefined ? silentLogger : consoleLogger(logLevel('', level, 'warn')));
  const { logger } = recordingLogger(base, session.reported);
  session.transports.push(...Object.values(loaded.config.transports));
  return { ...loaded, config: { ...loaded.config, logger } };
}

function attach(transport: Transport, loaded: LoadedConfig): void {
  // Without a bus, the transport still wants its logger (createBus would do this).
  transport.attach?.({ logger: (loaded.config.logger as Logger).child({ transport: transport.name }), metrics: loaded.config.metrics ?? noopMetrics });
}



function help(command: string, out: (text: string) => void): number {
  out(HELP[command] ?? (HELP[''] as string));
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
