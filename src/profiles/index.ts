export {
  createProfileCatalog,
  userOptionsSchema,
  ProfileError,
  BUILTIN_PROFILE,
  type ProfileCatalog,
  type UserOptions,
} from './server-profiles';
export { serverWorkloadName, SERVER_WORKLOAD_PREFIX, usernameProblem, validateUsername, validateServerName, serverNameProblem, MAX_NAME_BYTES, NameError } from './names';
export { LimitExceededError } from './limit-error';
