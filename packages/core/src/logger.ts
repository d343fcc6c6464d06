/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** The logger the bus writes to; pino's shape (`logger.info(msg, fields)` order aside) fits it. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(bindings: LogFields): Logger;
}

const noop = () => {};

/** The default: writes nothing. */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};

/** A logger writing one JSON line per entry to stderr, for examples and debugging. */
export function consoleLogger(level: 'debug' | 'info' | 'warn' | 'error' = 'info', bindings: LogFields = {}): Logger {
  const order = { debug: 10, info: 20, warn: 30, error: 40 } as const;
  const min = order[level];
  const write = (lvl: keyof typeof order) => (message: string, fields?: LogFields) => {
    if (order[lvl] < min) return;
    const line = { level: lvl, time: new Date().toISOString(), msg: message, ...bindings, ...fields };
    process.stderr.write(`${JSON.stringify(line, errorReplacer)}\n`);
  };
  return {
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    child: (more) => consoleLogger(level, { ...bindings, ...more }),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return value;
}
