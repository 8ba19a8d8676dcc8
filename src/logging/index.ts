export { logger, redact, registerSecret, type Logger } from './logger';
