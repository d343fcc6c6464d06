/**
 * `@bus/core/kit`: what every transport needs, implemented once. Settlement of batch handler calls,
 * closed option schemas with key paths and "did you mean …?", redaction of secrets, the TLS failure
 * inside a client library's error, header bytes to strings.
 */
export { BatchSettlement, type DeliveredRecord, type SettledBatch, type Settlement } from './settlement.js';
export { child, fail, type Infer, type OptionPath, OptionSchema, opt, rejectUnknownKeys, suggest } from './schema.js';
export { errorChain, tlsFailure } from './failure.js';
export { HeaderStrings } from './headers.js';
export { isSecretKey, redact, redactUrl } from '../redact.js';
