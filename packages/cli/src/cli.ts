import { BusError, consoleLogger, noopMetrics, type Transport } from '@bus/core';
import { type DeadLetter, deadLetterTopicOf, listDeadLetters, parseDuration, replayDeadLetters } from './dlq.js';
import { type LoadedConfig, loadConfig } from './load.js';
import { publishCommand } from './publish.js';
import { runInline, runModules, selectModules } from './run.js';
import { formatStatus, formatTable, readStatus } from './status.js';
import { intOption, logLevel, parse, UsageError } from './usage.js';

const COMMON_HELP = `
Options of every command:
  -c, --config <path>   config file (default: $BUS_CONFIG, else bus.config.{ts,mts,cts,js,mjs,cjs} here)
      --log-level <l>   debug | info | warn | error
  -h, --help            this help

Exit codes: 0 ok, 1 runtime error (broker, config, handler start), 2 usage error.`;

export const HELP: Record<string, string> = {
  '': `bus — run and inspect a bus from its config file (bus.config.ts)

Usage: bus <command> [options]

Commands:
  run [--module <name>]...              run modules as supervised worker processes
  publish <topic> <event> <json>        publish one event
  status [--module <name>]...           lag, pending and dead letters per module, consumer and topic
  dlq list <topic> [--limit <n>]        show dead-lettered messages of <topic> (reads <topic>.dlq)
  dlq replay <topic> [--delay <d>]      send dead letters back to the topic they came from (later)

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
group), PENDING (delivered, not acknowledged; Redis) and DEAD-LETTERS (messages of the dead-letter
topic not yet replayed by "bus dlq replay"), read with the transport's lag().

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
      --wait <ms>          longest wait for the first message (default 15000)
      --delay <duration>   (replay) deliver the copies no sooner than this from now: 500ms, 30s, 10m, 1h
                           (the transport's delayed delivery)
${COMMON_HELP}`,
};
HELP['dlq list'] = HELP.dlq as string;
HELP['dlq replay'] = HELP.dlq as string;

export interface MainOptions {
  /** Where results go. @default process.stdout */
  stdout?: (text: string) => void;
  /** Where errors and help for errors go. @default process.stderr */
  stderr?: (text: string) => void;
}

/**
 * The `bus` command line. Resolves with the exit code: 0 ok, 1 runtime error, 2 usage error.
 * `bus run` resolves only when it could not start (the process exits when it stops).
 */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const out = options.stdout ?? ((text: string) => process.stdout.write(`${text}\n`));
  const err = options.stderr ?? ((text: string) => process.stderr.write(`${text}\n`));
  const [command = '', ...rest] = argv;
  try {
    switch (command) {
      case '':
      case '-h':
      case '--help':
      case 'help':
        out(HELP[rest[0] ?? ''] ?? (HELP[''] as string));
        return command === '' ? 2 : 0;
      case 'run':
        return await run(rest, out);
      case 'publish':
        return await publish(rest, out);
      case 'status':
        return await status(rest, out);
      case 'dlq':
        return await dlq(rest, out);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      err(`bus: ${error.message}\nRun "bus ${error.command ? `${error.command} ` : ''}--help" for usage.`);
      return 2;
    }
    err(`bus: ${BusError.isInstance(error) || !(error instanceof Error) ? errorText(error) : error.message}`);
    if (process.env.BUS_DEBUG && error instanceof Error) err(error.stack ?? '');
    return 1;
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message;
  return String(error);
}

async function run(argv: readonly string[], out: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('run', argv, {
    module: { type: 'string', short: 'm', multiple: true },
    inline: { type: 'boolean' },
    worker: { type: 'boolean' },
  });
  if (values.help) return help('run', out);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, 'run');
  const level = logLevel('run', values['log-level'], 'info');
  if (values.inline || values.worker) {
    const loaded = await loadConfig(values.config);
    return runInline(loaded, selectModules(loaded, values.module), { worker: values.worker === true, logLevel: level });
  }
  const supervisor = await runModules({
    ...(values.config ? { config: values.config } : {}),
    ...(values.module ? { modules: values.module } : {}),
    logLevel: level,
  });
  return supervisor.stopped;
}

async function publish(argv: readonly string[], out: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('publish', argv, {
    key: { type: 'string', short: 'k' },
    transport: { type: 'string', short: 't' },
    header: { type: 'string', short: 'H', multiple: true },
  });
  if (values.help) return help('publish', out);
  if (positionals.length !== 3) throw new UsageError(`expected <topic> <event> <json>, got ${positionals.length} argument(s)`, 'publish');
  const [topic, event, json] = positionals as [string, string, string];
  const loaded = await withLogger(await loadConfig(values.config), values['log-level']);
  return publishCommand(
    loaded,
    { topic, event, json: json === '-' ? await readStdin() : json, key: values.key, transport: values.transport, headers: values.header },
    out,
  );
}

async function status(argv: readonly string[], out: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('status', argv, {
    module: { type: 'string', short: 'm', multiple: true },
    json: { type: 'boolean' },
  });
  if (values.help) return help('status', out);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, 'status');
  const loaded = await withLogger(await loadConfig(values.config), values['log-level']);
  const rows = await readStatus(loaded, selectModules(loaded, values.module));
  if (values.json) for (const row of rows) out(JSON.stringify(row));
  else out(formatStatus(rows));
  return 0;
}

async function dlq(argv: readonly string[], out: (text: string) => void): Promise<number> {
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
    delay: { type: 'string' },
  });
  if (values.help) return help(command, out);
  if (positionals.length !== 1) throw new UsageError(`expected one <topic>, got ${positionals.length}`, command);
  const topic = positionals[0] as string;
  const limit = intOption(command, 'limit', values.limit, sub === 'list' ? 20 : Number.MAX_SAFE_INTEGER);
  const waitMs = intOption(command, 'wait', values.wait, 15_000);
  let delayMs = 0;
  if (values.delay !== undefined) {
    if (sub !== 'replay') throw new UsageError('--delay is an option of "dlq replay"', command);
    try {
      delayMs = parseDuration(values.delay);
    } catch (error) {
      throw new UsageError(`--delay: ${(error as Error).message}`, command);
    }
  }
  const loaded = await withLogger(await loadConfig(values.config), values['log-level']);
  const transports = loaded.config.transports;
  const names = Object.keys(transports);
  const name = values.transport ?? loaded.config.defaultTransport ?? (names.length === 1 ? names[0] : undefined);
  if (name === undefined) throw new UsageError(`the config has several transports (${names.join(', ')}) and no defaultTransport; pass --transport`, command);
  const transport = transports[name];
  if (!transport) throw new UsageError(`--transport must name a transport of the config (${names.join(', ')}), got "${name}"`, command);
  attach(transport, loaded);
  try {
    if (sub === 'list') {
      const letters = await listDeadLetters(transport, topic, limit, waitMs);
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
      { delayMs },
    );
    const skipped = result.skipped ? `; skipped ${result.skipped} without a bus-dlq-topic header` : '';
    const later = delayMs > 0 ? `, delivered in ${values.delay}` : '';
    if (!values.json) out(`replayed ${result.replayed} dead letter(s) from ${deadLetterTopicOf(topic)}${later}${skipped}`);
    return 0;
  } finally {
    await Promise.allSettled(Object.values(transports).map((t) => t.close()));
  }
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

/** Commands other than `run` log transport warnings to stderr unless the config brings its own logger. */
async function withLogger(loaded: LoadedConfig, level: string | undefined): Promise<LoadedConfig> {
  const logger = loaded.config.logger ?? consoleLogger(logLevel('', level, 'warn'));
  return { ...loaded, config: { ...loaded.config, logger } };
}

function attach(transport: Transport, loaded: LoadedConfig): void {
  // Without a bus, the transport still wants its logger (createBus would do this).
  transport.attach?.({ logger: (loaded.config.logger ?? consoleLogger('warn')).child({ transport: transport.name }), metrics: loaded.config.metrics ?? noopMetrics });
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
