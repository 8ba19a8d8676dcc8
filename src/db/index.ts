/** Public surface of src/db: the Db contract, both engines, start-up selection, migrations, repositories. */
export { DatabaseUnavailableError, type Db, type Queryable } from './types';
export { createPostgresDb, describePostgresUrl, isConnectionError, type PostgresDbOptions } from './postgres';
export { createPgliteDb, type PgliteDbOptions } from './pglite';
export { openDatabase, type OpenDatabaseOptions } from './open';
export { openEmbeddedDb, type EmbeddedDbOptions, type EmbeddedRole } from './embedded';
export { embeddedUrl, enginePaths } from './embedded-engine';
export { lockPath, readLock, type EngineLock } from './embedded-lock';
export { dumpDatabase, restoreDump, RestoreRefusedError } from './dump';
export { upgradePgliteDir } from './pglite-upgrade';
export { migrate, pendingMigrations, type Migration, type MigrateOptions } from './migrate';
export {
  mintToken,
  verifyToken,
  revokeToken,
  revokeServerTokens,
  lookupToken,
  listTokens,
  getTokenInfo,
  revokeTokenById,
  revokeUserTokens,
  credentialStanding,
  hashToken,
  TOKEN_PREFIX,
  type TokenKind,
  type MintTokenInput,
  type TokenOwner,
  type TokenLookup,
  type TokenInfo,
  type CredentialStanding,
} from './tokens';
export { createBatchedTokenLookup, type TokenLookupBatchOptions } from './token-batch';
export { withAuditActor, type AuditActor } from './audit-actor';
export { listExperimentNames, resolveQuota, type QuotaResolution, type ExperimentQuota } from './quotas';
export {
  addServerEvent,
  beginServerStart,
  claimServerStart,
  countUserServers,
  lockUserServers,
  findServer,
  findServerByWorkload,
  getServer,
  listActiveServers,
  listServers,
  serverEventsAfter,
  transitionServer,
  type ServerEventRow,
  type ServerRow,
  type ServerState,
} from './servers';
export {
  countLiveKernels,
  lockKernelLaunches,
  getKernel,
  insertKernel,
  listKernels,
  recordKernelActivity,
  recordLaunch,
  updateKernel,
  updateKernelPorts,
  updateKernelKey,
  livePorts,
  LIVE_KERNEL_STATES,
  CONNECTION_TTL_SECONDS,
  type KernelLaunch,
  type KernelLimits,
  type KernelPorts,
  type KernelRow,
  type KernelState,
} from './kernels';
export { createSecretBox, loadSecretKey, SecretBoxError, type SecretBox } from './secret-box';
export * from './admin';
export { selectLiveUsage, selectExperimentQuotas, LIVE_SERVER_STATES, type LiveUsageRow, type ExperimentQuotaRow } from './usage-metrics';
export { recordUsageSample, selectUsageSamples, type UsageSample } from './usage-samples';
