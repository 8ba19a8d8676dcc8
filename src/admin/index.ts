/** Public surface of src/admin: the administration operations shared by the admin API and the CLI. */
export { withAuditActor, type AuditActor } from './audit-context';
export { AdminError, CONSTRAINT_MEANINGS, translateDbError, type AdminErrorKind } from './errors';
export * from './schemas';
export { createExperiment, getExperiment, listExperiments, setExperimentActive, updateExperiment } from './experiments';
export { createEnvironment, deleteEnvironment, getEnvironment, listEnvironments, updateEnvironment } from './environments';
export { createUser, getUser, listUsers, setUserActive, updateUser } from './users';
export { addMember, listMembers, removeMember } from './members';
export { getUsage, listUsage } from './usage';
export { listAudit } from './audit';
export {
  DEFAULT_TOKEN_TTL_SECONDS,
  getTokenModel,
  listTokenModels,
  mintUserToken,
  parseDuration,
  revokeAllTokens,
  revokeTokenModel,
  tokenMintSchema,
  tokenQuerySchema,
  tokenSchema,
  type TokenModel,
} from './tokens';
export { listUsageHistory, startUsageSampler, usageHistoryQuerySchema, usageSampleSchema, type UsageSamplerOptions } from './usage-history';
