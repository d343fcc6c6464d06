import { HandlerError } from '../errors.js';
import { type Delivery, type Outcome, type Policy, runCatching, syncPolicy } from '../policy.js';

/**
 * Turns a failure into a dead letter: the original record goes to the consumer's dead-letter topic
 * with the reason, error code, attempts, origin and group in `DLQ_HEADER` headers, and is then
 * acknowledged. When the dead letter cannot be written, the message is `released`: it is never
 * acknowledged unless stored somewhere.
 */
export function deadLetterPolicy(): Policy {
  return syncPolicy((next) => (delivery) => runCatching(next, delivery, store));
}

async function store(error: unknown, delivery: Delivery): Promise<Outcome> {
  const attempts = HandlerError.isInstance(error) ? error.attempts : delivery.attempt;
  const cause = HandlerError.isInstance(error) && error.cause !== undefined ? error.cause : error;
  return (await delivery.deadLetter(cause, attempts)) ? 'dead_lettered' : 'released';
}
