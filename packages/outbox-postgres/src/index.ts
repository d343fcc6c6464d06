export { type PgIdempotencyStore, type PgIdempotencyStoreOptions, pgIdempotencyStore } from './idempotency-store.js';
export { MIGRATIONS_DIR, type MigrateOptions, migrate } from './migrate.js';
export { type OutboxPublishOptions, type OutboxStats, type PgOutbox, type PgOutboxOptions, pgOutbox } from './outbox.js';
export type { Relay, RelayOptions } from './relay.js';
export type { PgPool, PooledClient, Queryable } from './sql.js';
