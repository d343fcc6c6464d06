/**
 * `@bus/core/kit`: what every transport needs, implemented once. Settlement of batch handler calls,
 * closed option schemas with key paths and "did you mean …?", redaction of secrets.
 */
export { BatchSettlement, type DeliveredRecord, type SettledBatch, type Settlement } from './settlement.js';
export { child, fail, type Infer, type OptionPath, OptionSchema, opt, rejectUnknownKeys, suggest } from './schema.js';
export { isSecretKey, redact, redactUrl } from '../redact.js';
