import type { OptionReader } from './config.js';
import { BusError, ValidationError, type ValidationIssue } from './errors.js';
import type { BatchEntry, EventMap, Handler, HandlerContext } from './events.js';
import type { StandardSchemaV1 } from './standard-schema.js';

/** Event name → Standard Schema of its payload (a zod, valibot, arktype… schema). */
export type EventSchemas = Record<string, StandardSchemaV1>;

/**
 * The events of a bus declared as schemas: what {@link defineEvents} returns and `createBus({ events })`
 * takes. The event map's types are inferred from the schemas; see {@link InferEvents}.
 */
export interface EventDefinitions<S extends EventSchemas = EventSchemas> {
  /** Brand telling an event definition from a plain object. */
  readonly '~bus': 'events';
  readonly schemas: Readonly<S>;
}

/**
 * The event map of an {@link EventDefinitions}: event name → the schema's *output* type. Handlers
 * receive the validated output; `publish` is typed with the same map, so schemas at the edges should
 * not transform (their input and output types are then equal).
 *
 * ```ts
 * const liveEvents = defineEvents({ 'anchor.income': z.object({ anchorId: z.string(), amount: z.number() }) });
 * type LiveEvents = InferEvents<typeof liveEvents>; // { 'anchor.income': { anchorId: string; amount: number } }
 * ```
 */
export type InferEvents<D> =
  D extends EventDefinitions<infer S> ? { [K in Extract<keyof S, string>]: StandardSchemaV1.InferOutput<S[K]> } : never;

/** Header of a dead-lettered record holding the schema's issues as JSON (`[{ path, message }]`). */
export const DLQ_ISSUES_HEADER = 'bus-dlq-issues';

/**
 * Declares a bus's events as Standard Schemas. Pass the result as `createBus({ events })`: the bus's
 * event map is inferred from it (no second declaration), `publish` and `publishBatch` validate
 * payloads before sending, and consumers validate before the handler (an invalid message goes to the
 * dead letter with code `VALIDATION` and the issues in the `bus-dlq-issues` header).
 *
 * ```ts
 * import { z } from 'zod';
 * export const liveEvents = defineEvents({
 *   'anchor.income': z.object({ anchorId: z.string(), amount: z.number().positive() }),
 * });
 * const bus = createBus({ events: liveEvents, transports: { memory: memoryTransport() } });
 * ```
 */
export function defineEvents<const S extends EventSchemas>(schemas: S): EventDefinitions<S> {
  for (const [event, schema] of Object.entries(schemas)) {
    if (!isStandardSchema(schema)) {
      throw new ValidationError(`[bus] defineEvents: the schema of "${event}" is not a Standard Schema (no "~standard" property of version 1)`, {
        event,
      });
    }
  }
  return { '~bus': 'events', schemas };
}

function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  const props = (value as { '~standard'?: { version?: unknown; validate?: unknown } } | null)?.['~standard'];
  return typeof props === 'object' && props !== null && props.version === 1 && typeof props.validate === 'function';
}

/** Checks the `events` option of `createBus`; throws a ConfigError naming it. */
export function readEventsOption(r: OptionReader, value: unknown): EventDefinitions | undefined {
  if (value === undefined) return undefined;
  const defs = r.object('events', value) as Partial<EventDefinitions>;
  if (defs['~bus'] !== 'events') r.fail('events', 'must be made by defineEvents()', value);
  const schemas = r.at('events').object('schemas', defs.schemas) as Record<string, unknown>;
  for (const [event, schema] of Object.entries(schemas)) {
    if (!isStandardSchema(schema)) r.at('events.schemas').fail(event, 'must be a Standard Schema', schema);
  }
  return defs as EventDefinitions;
}

/** `items[0].price` from a Standard Schema path. */
function formatPath(path: StandardSchemaV1.Issue['path']): string {
  let out = '';
  for (const segment of path ?? []) {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

function toIssues(issues: readonly StandardSchemaV1.Issue[]): ValidationIssue[] {
  return issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}

function describeIssues(issues: readonly ValidationIssue[]): string {
  const shown = issues.slice(0, 5).map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
  if (issues.length > 5) shown.push(`… ${issues.length - 5} more`);
  return shown.join('; ');
}

/**
 * Validates one payload against its event's schema. Resolves the schema's output (the payload itself
 * when the event has no schema); rejects with a {@link ValidationError} naming the event and the
 * path of each bad field. Synchronous schemas are not awaited twice: the result is returned as is.
 */
export function validatePayload(defs: EventDefinitions, event: string, payload: unknown, where = 'payload'): unknown | Promise<unknown> {
  const schema = defs.schemas[event];
  if (!schema) return payload;
  const result = schema['~standard'].validate(payload);
  if (result instanceof Promise) return result.then((r) => outcome(r, event, where));
  return outcome(result, event, where);
}

function outcome(result: StandardSchemaV1.Result<unknown>, event: string, where: string): unknown {
  if (!result.issues) return result.value;
  const issues = toIssues(result.issues);
  throw new ValidationError(`[bus] invalid ${where} of "${event}": ${describeIssues(issues)}`, { event, issues });
}

/**
 * Validates every entry of a batch before anything is sent; rejects with the first entry's
 * {@link ValidationError} (its message names the entry's index), so an invalid batch sends nothing.
 */
export async function validateBatch<M extends EventMap>(defs: EventDefinitions, entries: readonly BatchEntry<M>[]): Promise<void> {
  for (const [i, entry] of entries.entries()) await validatePayload(defs, entry.event, entry.payload, `payload (batch entry ${i})`);
}

/**
 * Wraps a handler chain so that each message's payload is validated before it runs; the handler gets
 * the schema's output. An invalid payload throws a {@link ValidationError}, which is never retried:
 * the router dead-letters the message at once. Without `defs`, returns `next` unchanged.
 */
export function validating(defs: EventDefinitions | undefined, next: Handler<EventMap>): Handler<EventMap> {
  if (!defs) return next;
  return (ctx) => {
    const checked = validatePayload(defs, ctx.event, ctx.payload);
    if (checked instanceof Promise) return checked.then((payload) => next({ ...ctx, payload } as HandlerContext<EventMap>));
    return next(checked === ctx.payload ? ctx : ({ ...ctx, payload: checked } as HandlerContext<EventMap>));
  };
}

/** Extra dead-letter headers for an error: the issues of a {@link ValidationError}, as JSON. */
export function validationHeaders(error: unknown): Record<string, string> {
  if (!ValidationError.isInstance(error) || !BusError.isInstance(error)) return {};
  return { [DLQ_ISSUES_HEADER]: JSON.stringify(error.issues).slice(0, 4000) };
}
