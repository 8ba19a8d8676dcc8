/**
 * Public surface of the job queue: the contract, both implementations and the picker, and the launch
 * routine every workload kind shares once its job runs.
 */
export {
  QueueUnavailableError,
  UnrecoverableJobError,
  type JobHandler,
  type JobInfo,
  type JobOptions,
  type JobQueue,
  type JobResult,
} from './types';
export { createBullmqQueue, type BullmqJobQueue, type BullmqQueueOptions } from './bullmq/queue';
export { createInProcessQueue, type InProcessQueueOptions } from './inprocess/queue';
export { openJobQueue, type OpenJobQueueOptions } from './open';
export {
  DEFAULT_ATTEMPTS,
  DEFAULT_BACKOFF_MS,
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_RESULT_TTL_MS,
} from './common';
export {
  hostProcessEnv,
  isAlive,
  isGone,
  listWorkloads,
  portWasTaken,
  stopQuietly,
  waitForAddress,
  watchExits,
  workloadOutput,
} from './workload-launch';
