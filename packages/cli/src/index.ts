export { HELP, type MainOptions, main } from './cli.js';
export {
  type DeadLetter,
  DLQ_REPLAY_GROUP,
  deadLetterTopicOf,
  listDeadLetters,
  parseDuration,
  REPLAYED_AT_HEADER,
  type ReplayOptions,
  type ReplayResult,
  replayDeadLetters,
} from './dlq.js';
export { CONFIG_FILES, findConfig, type LoadedConfig, loadConfig } from './load.js';
export { type RunModulesOptions, runModules } from './run.js';
export { readStatus, type StatusRow } from './status.js';
export { UsageError } from './usage.js';
export { type BusConfig, type BusConfigInput, defineConfig, type ModuleConfig } from '@bus/runtime';
export { BOARD_HELP, type BoardCommandOptions, boardOptions, type RunningBoard, startBoard } from './board.js';
