/** Public surface of `src/servers/`: the single-user server lifecycle, its spec builder and notifier. */
export {
  createServerLifecycle,
  SERVER_START_JOB,
  SERVER_STOP_JOB,
  type ServerLifecycle,
  type ServerLifecycleDeps,
  type StartRequest,
} from './server-lifecycle';
export { buildServerSpec, CONTAINER_SERVER_PORT, type ServerSpecInput } from './server-spec';
export { ServerNotifier } from './server-notifier';
export { PROGRESS, progressText } from './progress-messages';
