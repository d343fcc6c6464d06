export { keySlot } from './client.js';
export { delayedKey } from './delays.js';
export type { ConnectionRole, FieldNames, RedisClient, RedisClusterConnection, RedisStreamOptions, TrimOptions } from './options.js';
export { DEFAULTS as REDIS_STREAM_DEFAULTS } from './options.js';
export { type RedisStreamTransport, redisStream } from './transport.js';
export { type RedisIdempotencyStoreOptions, redisIdempotencyStore } from './idempotency-store.js';
