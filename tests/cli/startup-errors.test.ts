/**
 * `spawngate serve` refuses to start on bad configuration or unreachable dependencies, with a message
 * naming the variable, and never prints a password from a URL.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const CLI = path.resolve(__dirname, '..', '..', 'bin', 'spawngate.js');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-cli-'));

function serve(env: Record<string, string>): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'serve'], {
    env: { PATH: process.env.PATH, SPAWNGATE_DATA_DIR: dataDir, SPAWNGATE_PORT: '0', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, stderr: r.stderr };
}

test.each([
  [{ SPAWNGATE_PORT: 'abc' }, /SPAWNGATE_PORT: .*expected number/, 2],
  [{ SPAWNGATE_PORT: '70000' }, /SPAWNGATE_PORT:/, 2],
  [{ SPAWNGATE_BACKEND: 'nomad' }, /SPAWNGATE_BACKEND: .*"local"\|"docker"\|"kubernetes"/, 2],
  [{ SPAWNGATE_HUB_TOKEN: 'short' }, /SPAWNGATE_HUB_TOKEN: must be at least 16 characters/, 2],
  [{ SPAWNGATE_DATABASE_URL: 'mysql://x' }, /SPAWNGATE_DATABASE_URL: must be a postgres:\/\/ URL/, 2],
  [{ SPAWNGATE_REDIS_URL: 'http://x' }, /SPAWNGATE_REDIS_URL: must be a redis:\/\/ URL/, 2],
  [{ SPAWNGATE_CONFIG: '/nonexistent/spawngate.yaml' }, /SPAWNGATE_CONFIG: cannot read \/nonexistent\/spawngate.yaml/, 2],
])('invalid %j stops start-up naming the variable', (env, message, status) => {
  const r = serve(env as Record<string, string>);
  expect(r.stderr).toMatch(message);
  expect(r.status).toBe(status);
});

test('a config file with an invalid profile names the file and the field', () => {
  const file = path.join(dataDir, 'bad.yaml');
  fs.writeFileSync(file, 'profiles:\n  - slug: Not_A_Label\n    display_name: x\n');
  const r = serve({ SPAWNGATE_CONFIG: file });
  expect(r.stderr).toContain(`SPAWNGATE_CONFIG (${file}): profiles.0.slug: slug must be a DNS label`);
  expect(r.status).toBe(2);
});

test('a config file that is not YAML is refused', () => {
  const file = path.join(dataDir, 'broken.yaml');
  fs.writeFileSync(file, 'profiles: [unclosed\n');
  const r = serve({ SPAWNGATE_CONFIG: file });
  expect(r.stderr).toMatch(/SPAWNGATE_CONFIG: .* is not valid YAML/);
});

test('unreachable Postgres: names SPAWNGATE_DATABASE_URL and hides the password', () => {
  const r = serve({ SPAWNGATE_DATABASE_URL: 'postgres://app:s3cretPassw0rd@127.0.0.1:1/spawngate' });
  expect(r.stderr).toMatch(/SPAWNGATE_DATABASE_URL/);
  expect(r.stderr).toContain('127.0.0.1:1');
  expect(r.stderr).not.toContain('s3cretPassw0rd');
  expect(r.status).toBe(1);
});

test('unreachable Redis: names SPAWNGATE_REDIS_URL and hides the password', () => {
  const r = serve({ SPAWNGATE_REDIS_URL: 'redis://:s3cretPassw0rd@127.0.0.1:1' });
  expect(r.stderr).toMatch(/SPAWNGATE_REDIS_URL: Redis at 127\.0\.0\.1:1 is unreachable/);
  expect(r.stderr).not.toContain('s3cretPassw0rd');
  expect(r.status).toBe(1);
});
