/**
 * The embedded default (no SPAWNGATE_DATABASE_URL), through the built CLI: private files from every
 * subcommand; token/admin/sql while serve runs, seen at once; two processes' concurrent writes; kill -9
 * of serve mid-write; backup while serving and restore into a fresh directory; the upgrade of a PGlite
 * directory of the previous release. No postgres process outlives a test.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { createPgliteDb, embeddedUrl, enginePaths, migrate } from '../../src/db';
import { cli, cliAsync, freshDataDir, notPrivate, postgresUnder, startServe, waitGone, type Serving } from './embedded-support';

jest.setTimeout(180_000);

const serving: Serving[] = [];
const dirs: string[] = [];
function dataDir(label: string): string {
  const d = freshDataDir(label);
  dirs.push(path.dirname(d));
  return d;
}
afterAll(async () => {
  for (const s of serving) await s.stop();
  for (const d of dirs) {
    expect(await waitGone(d)).toEqual([]);
    fs.rmSync(d, { recursive: true, force: true });
  }
});

function ok(r: { status: number | null; stdout: string; stderr: string }): string {
  if (r.status !== 0) throw new Error(`exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const EXPERIMENT = ['admin', 'experiments', 'create', 'genomics', '--cpu-request', '0.5', '--cpu-limit', '2', '--memory-request-mib', '512', '--memory-limit-mib', '2048'];

test.each([
  ['migrate', ['migrate']],
  ['token', ['token', '--user', 'alice']],
  ['admin', EXPERIMENT],
  ['sql', ['sql', '-c', 'SELECT 1']],
  ['backup', ['backup', 'PLACEHOLDER']],
])('%s on a fresh directory leaves it 0700 with 0600 files and no engine running', async (_name, args) => {
  const dir = dataDir('perm');
  const argv = args.map((a) => (a === 'PLACEHOLDER' ? path.join(dir, 'backup.sql') : a));
  ok(cli(dir, argv));
  expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
  expect(fs.existsSync(path.join(enginePaths(dir).cluster, 'PG_VERSION'))).toBe(true);
  expect(notPrivate(dir)).toEqual([]);
  expect(fs.existsSync(path.join(dir, 'pg.lock'))).toBe(false);
  expect(await waitGone(dir)).toEqual([]);
});

describe('while serve runs', () => {
  let dir: string;
  let serve: Serving;
  beforeAll(async () => {
    dir = dataDir('serve');
    serve = await startServe(dir);
    serving.push(serve);
  });

  test('a CLI-minted token works at once; admin and sql changes are visible to the service and each other', async () => {
    const token = ok(cli(dir, ['token', '--user', 'alice'])).trim();
    const res = await fetch(`${serve.url}/api/kernelspecs`, { headers: { Authorization: `token ${token}` } });
    expect(res.status).toBe(200);
    const bogus = await fetch(`${serve.url}/api/kernelspecs`, { headers: { Authorization: `token ${token}x` } });
    expect(bogus.status).toBe(401);
    ok(cli(dir, EXPERIMENT));
    expect(ok(cli(dir, ['sql', '-c', "SELECT name, cpu_limit FROM experiments WHERE name = 'genomics'"]))).toMatch(/genomics \| +2/);
    const lock = JSON.parse(fs.readFileSync(path.join(dir, 'pg.lock'), 'utf8')) as { pid: number; role: string };
    expect(lock).toMatchObject({ pid: serve.child.pid, role: 'serve' });
  });

  test("the service's / answers a browser with links, JSON clients with JSON", async () => {
    const page = await fetch(`${serve.url}/`, { headers: { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    for (const href of ['/api/docs/', '/healthz', '/metrics']) expect(html).toContain(`href="${href}"`);
    for (const href of ['/api/docs/', '/healthz', '/metrics']) expect((await fetch(`${serve.url}${href}`)).status).toBe(200);
    const json = await fetch(`${serve.url}/`, { headers: { Accept: 'application/json' } });
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    await json.json();
  });

  test('a thousand mixed operations from two processes leave a consistent database', async () => {
    const script = (who: string): string => {
      const lines: string[] = [];
      for (let i = 0; i < 250; i++) {
        lines.push(`INSERT INTO users (username) VALUES ('${who}-${i}');`);
        lines.push(`UPDATE users SET email = '${who}-${i}@lab' WHERE username = '${who}-${i}';`);
      }
      return lines.join('\n') + '\n';
    };
    const [a, b] = await Promise.all([cliAsync(dir, ['sql', '--no-psql'], script('p')), cliAsync(dir, ['sql', '--no-psql'], script('q'))]);
    expect([a.status, b.status, a.stderr, b.stderr]).toEqual([0, 0, '', '']);
    const out = ok(cli(dir, ['sql', '-c', "SELECT count(*) AS n, count(email) AS e, count(DISTINCT username) AS d FROM users WHERE username ~ '^[pq]-'"]));
    expect(out).toMatch(/ 500 \| 500 \| 500\n/);
  });

  test('backup while serving restores into a fresh directory with every user, experiment and token', async () => {
    const file = path.join(path.dirname(dir), 'live.sql');
    const counts = "SELECT (SELECT count(*) FROM users) AS u, (SELECT count(*) FROM experiments) AS x, (SELECT count(*) FROM api_tokens) AS t";
    ok(cli(dir, ['backup', file]));
    const before = ok(cli(dir, ['sql', '-c', counts]));
    const fresh = dataDir('restore');
    ok(cli(fresh, ['restore', file]));
    expect(ok(cli(fresh, ['sql', '-c', counts]))).toBe(before);
    expect(before).toMatch(/\d+ \| +1 \| +1\n/);
    // Not over a directory that has users already.
    const again = cli(fresh, ['restore', file]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already has \d+ users/);
  });

  test('a second serve on the same directory is a client of the first; the lock names the holder', async () => {
    const second = await startServe(dir);
    serving.push(second);
    expect((await fetch(`${second.url}/readyz`)).status).toBe(200);
    await second.stop();
    expect((await fetch(`${serve.url}/readyz`)).status).toBe(200);
  });
});

test('kill -9 of serve in the middle of writes loses nothing committed; the next start opens cleanly', async () => {
  const dir = dataDir('kill');
  const serve = await startServe(dir);
  serving.push(serve);
  const client = new pg.Client({ connectionString: embeddedUrl(enginePaths(dir).socketDir) });
  client.on('error', () => undefined);
  await client.connect();
  const committed: string[] = [];
  const writing = (async () => {
    for (let i = 0; ; i++) {
      try {
        await client.query('INSERT INTO users (username) VALUES ($1)', [`k-${i}`]);
        committed.push(`k-${i}`);
      } catch {
        return;
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 800));
  serve.child.kill('SIGKILL');
  await writing;
  await client.end().catch(() => undefined);
  expect(committed.length).toBeGreaterThan(10);
  expect(await waitGone(dir)).toEqual([]); // the engine followed its owner
  const out = ok(cli(dir, ['sql', '-c', "SELECT count(*) AS n FROM users WHERE username LIKE 'k-%'"]));
  const n = Number(/\n +(\d+)\n/.exec(out)![1]);
  expect(n).toBeGreaterThanOrEqual(committed.length);
  const next = await startServe(dir);
  serving.push(next);
  expect((await fetch(`${next.url}/readyz`)).status).toBe(200);
  await next.stop();
});

test('a PGlite data directory of the previous release opens with the embedded engine, quotas kept', async () => {
  const dir = dataDir('upgrade');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const old = await createPgliteDb({ dataDir: path.join(dir, 'db') });
  await migrate(old);
  await old.query("INSERT INTO users (username) VALUES ('alice')");
  await old.query("INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('imaging', 1, 3, 256, 1024)");
  await old.close();
  const out = ok(cli(dir, ['sql', '-c', 'SELECT u.username, e.name, e.cpu_limit FROM users u, experiments e']));
  expect(out).toMatch(/alice +\| imaging \| +3\n/);
  expect(fs.existsSync(path.join(dir, 'db.pglite-upgraded', 'PG_VERSION'))).toBe(true);
  expect(fs.existsSync(path.join(dir, 'db'))).toBe(false);
  // Identity columns continue after the copied rows.
  ok(cli(dir, ['sql', '-c', "INSERT INTO users (username) VALUES ('bob')"]));
  expect(notPrivate(dir)).toEqual([]);
});

test('a holder that does not answer is named with what to do, and the directory is left untouched', async () => {
  const dir = dataDir('held');
  ok(cli(dir, ['migrate']));
  // A live process that holds the lock but runs no engine (as if hung before its engine answered).
  const holder = spawn('sleep', ['60']);
  try {
    fs.writeFileSync(path.join(dir, 'pg.lock'), JSON.stringify({ pid: holder.pid, role: 'sql', socketDir: enginePaths(dir).socketDir, startedAt: new Date().toISOString() }));
    const r = cli(dir, ['token', '--user', 'alice']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`is held by pid ${holder.pid} (spawngate sql) and does not answer; wait for that process to finish or stop it (kill ${holder.pid}), then retry`);
    expect(postgresUnder(dir)).toEqual([]);
  } finally {
    holder.kill();
  }
  // Once the holder is gone its lock is stale: the next CLI starts the engine and finds the schema.
  await new Promise((r) => holder.once('exit', r));
  expect(ok(cli(dir, ['sql', '-c', 'SELECT count(*) AS n FROM schema_migrations']))).toMatch(/\n +[1-9]\d*\n/);
});

test('postgres processes of these tests are gone', async () => {
  for (const s of serving) await s.stop();
  for (const d of dirs) expect(await waitGone(d)).toEqual([]);
  // Each test's own directories only: other test files run their own engines under the same tmpdir at once.
  for (const d of dirs) expect(postgresUnder(d)).toEqual([]);
});
