export { defaultKillTimeoutMs, workerCloseTimeoutMs } from './budget.js';
export {
  type BusConfig,
  type BusConfigInput,
  createBusFromConfig,
  defineConfig,
  type HookResult,
  type ModuleConfig,
  type ModuleProcessSettings,
  type ResolvedConfig,
  resolveConfig,
  type SupervisorHook,
  type WorkerHook,
  type WorkerHookContext,
} from './config-file.js';
export { type HealthOptions, type HealthServer, healthServer } from './health.js';
export {
  type AnswerHandler,
  type AskFailure,
  type AskWorkersOptions,
  answerSupervisor,
  isSupervisedWorker,
  notifySupervisor,
  type SupervisorRequest,
  WORKER_ENV,
  type WorkerMessage,
  type WorkerReply,
  type WorkerResponse,
} from './ipc.js';
export { type Closeable, type CloseOnSignalsOptions, closeOnSignals, type EarlySignalsOptions, exitOnEarlySignals, type ShutdownHandle } from './signals.js';
export { type SuperviseOptions, type Supervisor, supervise, type WorkerGroupOptions, type WorkerInfo, type WorkerStatus } from './supervise.js';
export { type RunWorkerOptions, runWorker, type Startable, type WorkerHandle, type WorkerHealthOptions } from './worker.js';
