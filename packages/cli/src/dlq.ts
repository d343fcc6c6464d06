/**
 * Dead letters: `bus dlq list|replay` and the web board (`@bus/board`) share one implementation,
 * which lives in `@bus/board` (the board needs it; the CLI depends on the board for `bus board`).
 */
export {
  type DeadLetter,
  type Progress,
  DLQ_REPLAY_GROUP,
  deadLetterTopicOf,
  listDeadLetters,
  parseDuration,
  REPLAYED_AT_HEADER,
  type ReplayOptions,
  type ReplayResult,
  replayDeadLetters,
  toDeadLetter,
} from '@bus/board';
