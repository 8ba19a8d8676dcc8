export {
  createProfileCatalog,
  userOptionsSchema,
  ProfileError,
  BUILTIN_PROFILE,
  type ProfileCatalog,
  type UserOptions,
} from './server-profiles';
export { serverWorkloadName, SERVER_WORKLOAD_PREFIX, usernameProblem, validateUsername, validateServerName, MAX_USERNAME_CHARS, NameError } from './names';
export { LimitExceededError } from './limit-error';
