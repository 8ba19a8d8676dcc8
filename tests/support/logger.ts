/** The logger tests hand to the code under test: silent, unless SPAWNGATE_TEST_LOG=1 prints everything. */
import winston from 'winston';
import type { Logger } from '../../src/logging';

export const testLogger: Logger = winston.createLogger({
  level: 'debug',
  silent: process.env.SPAWNGATE_TEST_LOG !== '1',
  transports: [new winston.transports.Console()],
});
