import type { Bus, EventMap, Headers } from '@bus/core';
import { createBusFromConfig } from '@bus/runtime';
import type { LoadedConfig } from './load.js';
import { UsageError } from './usage.js';

export interface PublishArgs {
  topic: string;
  event: string;
  /** The payload as JSON text. */
  json: string;
  key?: string | undefined;
  transport?: string | undefined;
  /** `name=value` pairs. */
  headers?: readonly string[] | undefined;
}

/** `bus publish`: one event, through the config's bus (so its codec and source apply). Prints the receipt as JSON. */
export async function publishCommand(loaded: LoadedConfig, args: PublishArgs, out: (line: string) => void): Promise<number> {
  let payload: unknown;
  try {
    payload = JSON.parse(args.json);
  } catch (error) {
    throw new UsageError(`<json> is not valid JSON: ${(error as Error).message}`, 'publish');
  }
  const headers: Headers = {};
  for (const pair of args.headers ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--header must be name=value, got ${JSON.stringify(pair)}`, 'publish');
    headers[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const bus: Bus<EventMap> = createBusFromConfig(loaded.config);
  try {
    if (args.transport !== undefined && !(args.transport in bus.transports)) {
      throw new UsageError(`--transport must name a transport of the config (${Object.keys(bus.transports).join(', ')}), got "${args.transport}"`, 'publish');
    }
    const receipt = await bus.publish(args.topic, args.event, payload, {
      ...(args.key === undefined ? {} : { key: args.key }),
      ...(args.transport === undefined ? {} : { transport: args.transport }),
      headers,
    });
    out(JSON.stringify({ topic: args.topic, event: args.event, transport: args.transport ?? bus.defaultTransport, ...receipt }));
    return 0;
  } finally {
    await bus.close();
  }
}
