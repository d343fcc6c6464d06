/**
 * `@bus/board`: a web board for a bus — modules, consumers, lag and dead letters at a glance, replay
 * with a click. Mounts in `node:http` (and Express, Connect) or any fetch-style server.
 *
 * @packageDocumentation
 */
export { type Board, type BoardAccess, type BoardOptions, type BoardRequest, type BoardSource, createBoard } from './board.js';
export { answerCounts, COUNTS_TOPIC, type ConsumerCounts, type CountingMetrics, type CountsSnapshot, type CountsSource, countingMetrics, workerCounts } from './counters.js';
export {
  type DeadLetter,
  DLQ_REPLAY_GROUP,
  deadLetterTopicOf,
  listDeadLetters,
  parseDuration,
  type Progress,
  publishReplays,
  REPLAYED_AT_HEADER,
  type ReadTopicOptions,
  type ReplayOptions,
  type ReplayResult,
  readTopic,
  replayDeadLetters,
  replayRecord,
  type StoredRecord,
  toDeadLetter,
} from './dead-letters.js';
export { escapeHtml } from './html.js';
export { type BoardModule, type ConsumerRow, type ModuleRow, type Overview, readOverview, type TopicRow, type TransportRow, type WorkersRow } from './overview.js';
export {
  type DeadLetterPage,
  type DeadLetterStore,
  defaultDeadLetterStore,
  isRedisTransport,
  KAFKA_DELETE_UNAVAILABLE,
  redisDeadLetters,
  type ScanStoreOptions,
  scanDeadLetters,
} from './stores.js';
