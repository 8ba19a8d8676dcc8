export {
  createProfileCatalog,
  userOptionsSchema,
  ProfileError,
  BUILTIN_PROFILE,
  type ProfileCatalog,
  type UserOptions,
} from './server-profiles';
export { serverWorkloadName, validateUsername, validateServerName, NameError } from './names';
export { LimitExceededError } from './limit-error';
