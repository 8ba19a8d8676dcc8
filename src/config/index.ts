export { loadConfig, ConfigError, type Config } from './load';
export {
  envSchema,
  fileConfigSchema,
  profileSchema,
  resourcesSchema,
  type EnvConfig,
  type FileConfig,
  type Profile,
  type Resources,
} from './schema';
