/**
 * Secrets from files (`<X>_FILE`) for every secret setting: the value is read (one trailing newline
 * dropped), setting both `X` and `X_FILE` is a configuration error naming both, an unreadable or empty
 * file names the variable, and a service configured only through files works (Postgres URL, admin
 * and hub tokens). `spawngate serve` refuses the conflict with exit status 2.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { ConfigError, loadConfig, SECRET_SETTINGS } from '../../src/config';
import { createService } from '../../src/compose';
import { captureLogger, createTestPostgres } from '../db/helpers';

jest.setTimeout(60_000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-secret-files-'));
function secretFile(name: string, content: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content, { mode: 0o600 });
  return p;
}

const VALUES: Record<(typeof SECRET_SETTINGS)[number], string> = {
  SPAWNGATE_HUB_TOKEN: 'hub-token-from-a-file-0123456789',
  SPAWNGATE_ADMIN_TOKEN: 'admin-token-from-a-file-0123456789',
  SPAWNGATE_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
  SPAWNGATE_OIDC_CLIENT_SECRET: 'client-secret-from-a-file',
  SPAWNGATE_DATABASE_URL: 'postgres://app:pw@db.example:5432/spawngate',
  SPAWNGATE_REDIS_URL: 'redis://:pw@redis.example:6379',
};

test.each(SECRET_SETTINGS.map((k) => [k]))('%s_FILE supplies its value (trailing newline dropped)', (key) => {
  const file = secretFile(`${key}.txt`, `${VALUES[key]}\n`);
  const config = loadConfig({ [`${key}_FILE`]: file });
  expect(config.env[key]).toBe(VALUES[key]);
});

test('setting both X and X_FILE is a configuration error naming both', () => {
  const file = secretFile('hub.txt', VALUES.SPAWNGATE_HUB_TOKEN);
  expect(() => loadConfig({ SPAWNGATE_HUB_TOKEN: VALUES.SPAWNGATE_HUB_TOKEN, SPAWNGATE_HUB_TOKEN_FILE: file })).toThrow(
    new ConfigError('invalid configuration: SPAWNGATE_HUB_TOKEN and SPAWNGATE_HUB_TOKEN_FILE are both set; set only one of them'),
  );
});

test('a missing or empty file is an error naming the _FILE variable; the value is validated like the variable', () => {
  expect(() => loadConfig({ SPAWNGATE_ADMIN_TOKEN_FILE: path.join(dir, 'absent') })).toThrow(/SPAWNGATE_ADMIN_TOKEN_FILE: cannot read .*absent: ENOENT/);
  expect(() => loadConfig({ SPAWNGATE_ADMIN_TOKEN_FILE: secretFile('empty', '\n') })).toThrow(/SPAWNGATE_ADMIN_TOKEN_FILE: .*empty is empty/);
  expect(() => loadConfig({ SPAWNGATE_HUB_TOKEN_FILE: secretFile('short', 'short\n') })).toThrow(/SPAWNGATE_HUB_TOKEN: must be at least 16 characters/);
});

test('a service configured through _FILE variables reaches Postgres and accepts the tokens from the files', async () => {
  const pg = await createTestPostgres();
  const service = await createService(
    loadConfig({
      SPAWNGATE_DATA_DIR: path.join(dir, 'data'),
      SPAWNGATE_PORT: '0',
      SPAWNGATE_DATABASE_URL_FILE: secretFile('db-url', `${pg.url}\n`),
      SPAWNGATE_ADMIN_TOKEN_FILE: secretFile('admin', `${VALUES.SPAWNGATE_ADMIN_TOKEN}\n`),
      SPAWNGATE_HUB_TOKEN_FILE: secretFile('hub', VALUES.SPAWNGATE_HUB_TOKEN),
    }),
    { logger: captureLogger().logger },
  );
  try {
    expect(service.db.kind).toBe('postgres');
    expect((await request(service.app!).get('/api/admin/users').set({ Authorization: `token ${VALUES.SPAWNGATE_ADMIN_TOKEN}` })).status).toBe(200);
    expect((await request(service.app!).get('/api/users/alice/profiles').set({ Authorization: `token ${VALUES.SPAWNGATE_HUB_TOKEN}` })).status).toBe(200);
  } finally {
    await service.close();
    await pg.drop();
  }
});

test('`spawngate serve` with both X and X_FILE stops with exit status 2 naming both', () => {
  const cli = path.resolve(__dirname, '..', '..', 'bin', 'spawngate.js');
  const r = spawnSync(process.execPath, [cli, 'serve'], {
    env: { PATH: process.env.PATH, SPAWNGATE_DATA_DIR: path.join(dir, 'serve'), SPAWNGATE_PORT: '0', SPAWNGATE_ADMIN_TOKEN: VALUES.SPAWNGATE_ADMIN_TOKEN, SPAWNGATE_ADMIN_TOKEN_FILE: secretFile('a2', VALUES.SPAWNGATE_ADMIN_TOKEN) },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.stderr).toMatch(/SPAWNGATE_ADMIN_TOKEN and SPAWNGATE_ADMIN_TOKEN_FILE are both set/);
  expect(r.stderr).not.toContain(VALUES.SPAWNGATE_ADMIN_TOKEN);
  expect(r.status).toBe(2);
});
