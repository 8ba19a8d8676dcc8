/**
 * The hub API in-process (supertest) over a real service: embedded PGlite, in-process queue and the
 * local backend running small Python HTTP servers in place of jupyterhub-singleuser.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { loadConfig } from '../../src/config';
import { createService, type Service } from '../../src/compose';
import { mintToken } from '../../src/db';
import { progressText } from '../../src/servers';

jest.setTimeout(60_000);

const HUB = 'hub-token-for-tests-0123456789';
const ADMIN = 'admin-token-for-tests-0123456789';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-hubapi-'));
fs.writeFileSync(
  path.join(dir, 'config.yaml'),
  `profiles:
  - slug: web
    display_name: Python web server
    default: true
    command: ["/usr/bin/python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
  - slug: crash
    display_name: Exits at once
    command: ["/bin/sh", "-c", "echo 'line one'; echo 'crash-reason-42' >&2; exit 7"]
  - slug: slow
    display_name: Takes a second to answer
    command: ["/bin/sh", "-c", "sleep 1; exec /usr/bin/python3 -m http.server {port} --bind 127.0.0.1"]
  - slug: port-taken-once
    display_name: Loses its port on the first try
    allowed_users: [ivy]
    command: ["/bin/sh", "-c", "if [ ! -e $PORT_MARKER ]; then : > $PORT_MARKER; echo 'OSError: [Errno 98] Address already in use' >&2; exit 1; fi; exec /usr/bin/python3 -m http.server {port} --bind 127.0.0.1"]
    env: { PORT_MARKER: "${path.join(dir, 'port-taken-once')}" }
  - slug: private
    display_name: Only for alice
    allowed_users: [alice]
    command: ["/usr/bin/python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
`,
);

let service: Service;
const auth = { Authorization: `token ${HUB}` };

async function waitState(user: string, want: string): Promise<Record<string, unknown>> {
  const res = await request(service.app!).get(`/api/users/${user}/server?wait=ready&timeout=20`).set(auth);
  expect(res.body.state).toBe(want);
  return res.body as Record<string, unknown>;
}

beforeAll(async () => {
  const config = loadConfig({
    SPAWNGATE_DATA_DIR: path.join(dir, 'data'),
    SPAWNGATE_HUB_TOKEN: HUB,
    SPAWNGATE_ADMIN_TOKEN: ADMIN,
    SPAWNGATE_CONFIG: path.join(dir, 'config.yaml'),
    SPAWNGATE_PORT: '0',
    // Functional tests, not identity tests: every workload runs as the test runner (tests/tenancy covers per-user identities).
    SPAWNGATE_LOCAL_SHARED_IDENTITY: '1',
  });
  service = await createService(config);
});

afterAll(async () => {
  await service.lifecycle.stopAllNow(1);
  await service.close();
});

describe('authentication', () => {
  test('no token: 401 with EG error shape', async () => {
    const res = await request(service.app!).get('/api/servers');
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ reason: 'Unauthorized', message: 'missing or invalid token' });
  });

  test('wrong token: 401', async () => {
    const res = await request(service.app!).get('/api/servers').set({ Authorization: 'token not-the-right-token-at-all' });
    expect(res.status).toBe(401);
  });

  test('a user gateway token cannot manage servers: 403', async () => {
    const token = await mintToken(service.db, { username: 'alice', kind: 'cli' });
    const res = await request(service.app!).post('/api/users/alice/server').set({ Authorization: `token ${token}` }).send({});
    expect(res.status).toBe(403);
  });

  test('the admin token may manage servers; Bearer is accepted too', async () => {
    const res = await request(service.app!).get('/api/servers').set({ Authorization: `Bearer ${ADMIN}` });
    expect(res.status).toBe(200);
  });
});

describe('bad input', () => {
  test.each([
    ['..', 400],
    ['a%2Fb', 400],
    ['alice%00', 400],
    ['x'.repeat(300), 400],
  ])('user name %s is refused', async (name, status) => {
    const res = await request(service.app!).post(`/api/users/${name}/server`).set(auth).send({});
    expect(res.status).toBe(status);
    expect(res.body.message).toMatch(/invalid user name/);
  });

  test('unknown profile: 400 naming the available ones', async () => {
    const res = await request(service.app!).post('/api/users/bob/server').set(auth).send({ user_options: { profile: 'gpu-huge' } });
    expect(res.status).toBe(400);
    expect(res.body.message).toBe("unknown profile 'gpu-huge'; available: 'web', 'crash', 'slow'");
  });

  test("a profile restricted to another user is not offered and cannot be chosen", async () => {
    const list = await request(service.app!).get('/api/users/bob/profiles').set(auth);
    expect(list.body.profiles.map((p: { slug: string }) => p.slug)).toEqual(['web', 'crash', 'slow']);
    const res = await request(service.app!).post('/api/users/bob/server').set(auth).send({ user_options: { profile: 'private' } });
    expect(res.status).toBe(400);
  });

  test('unknown user_options key: 400', async () => {
    const res = await request(service.app!).post('/api/users/bob/server').set(auth).send({ user_options: { profil: 'web' } });
    expect(res.status).toBe(400);
    expect(res.body.message).toBe("invalid user_options: unknown option 'profil'; allowed: 'profile'");
  });

  test('environment variable names are checked and sizes capped', async () => {
    const bad = await request(service.app!).post('/api/users/bob/server').set(auth).send({ env: { 'BAD-NAME': 'x' } });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/env.BAD-NAME/);
    const big = await request(service.app!).post('/api/users/bob/server').set(auth).send({ env: { X: 'y'.repeat(40 * 1024) } });
    expect(big.status).toBe(400);
  });

  test('a body over 1 MiB: 413', async () => {
    const res = await request(service.app!).post('/api/users/bob/server').set(auth).set('Content-Type', 'application/json').send(`{"env":{"A":"${'z'.repeat(1_100_000)}"}}`);
    expect(res.status).toBe(413);
  });

  test('malformed JSON: 400', async () => {
    const res = await request(service.app!).post('/api/users/bob/server').set(auth).set('Content-Type', 'application/json').send('{"env": ');
    expect(res.status).toBe(400);
    expect(res.body.message).toBe('request body is not valid JSON');
  });

  test('unknown server: 404', async () => {
    const res = await request(service.app!).get('/api/users/nobody/server').set(auth);
    expect(res.status).toBe(404);
  });
});

describe('lifecycle', () => {
  test('start, long-poll until running, HTTP reachable, stop with wait', async () => {
    const start = await request(service.app!).post('/api/users/alice/server').set(auth).send({ env: { JUPYTERHUB_SERVICE_PREFIX: '/' } });
    expect(start.status).toBe(202);
    expect(start.body.state).toBe('pending');
    const running = await waitState('alice', 'running');
    expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(String(running.url))).status).toBe(200);
    const stop = await request(service.app!).delete('/api/users/alice/server?wait=true&timeout=10').set(auth);
    expect(stop.status).toBe(200);
    expect(stop.body.state).toBe('stopped');
    await expect(fetch(String(running.url))).rejects.toThrow();
    const again = await request(service.app!).delete('/api/users/alice/server?wait=true').set(auth);
    expect(again.status).toBe(200);
  });

  test('concurrent starts of one server make one workload', async () => {
    const results = await Promise.all(
      Array.from({ length: 5 }, () => request(service.app!).post('/api/users/carol/server').set(auth).send({})),
    );
    expect(results.filter((r) => r.status === 202)).toHaveLength(1);
    expect(results.filter((r) => r.status === 200)).toHaveLength(4);
    await waitState('carol', 'running');
    const workloads = (await service.backend.list()).filter((w) => w.labels?.['spawngate/user'] === 'carol');
    expect(workloads).toHaveLength(1);
    await request(service.app!).delete('/api/users/carol/server?wait=true').set(auth);
  });

  test('a command that exits at once: failed promptly with exit code and last output', async () => {
    const t0 = Date.now();
    await request(service.app!).post('/api/users/dave/server').set(auth).send({ user_options: { profile: 'crash' } });
    const failed = await waitState('dave', 'failed');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(failed.exit_code).toBe(7);
    expect(failed.message).toMatch(/exited with status 7/);
    expect(failed.last_output).toEqual(expect.arrayContaining(['line one', 'crash-reason-42']));
    // A failed server can be started again (new generation).
    const retry = await request(service.app!).post('/api/users/dave/server').set(auth).send({});
    expect(retry.status).toBe(202);
    expect(retry.body.generation).toBe((failed.generation as number) + 1);
    await waitState('dave', 'running');
    await request(service.app!).delete('/api/users/dave/server?wait=true').set(auth);
  });

  test('a server whose port was taken before it listened is started again on another port', async () => {
    await request(service.app!).post('/api/users/ivy/server').set(auth).send({ user_options: { profile: 'port-taken-once' } });
    const running = await waitState('ivy', 'running');
    expect(fs.existsSync(path.join(dir, 'port-taken-once'))).toBe(true);
    expect((await fetch(String(running.url))).status).toBe(200);
    const progress = await service.db.query<{ message: string }>(
      `SELECT e.message FROM server_events e JOIN servers s ON s.id = e.server_id WHERE s.username = 'ivy' ORDER BY e.id`,
    );
    expect(progress.map((p) => p.message)).toContain(progressText.retryingPort());
    await request(service.app!).delete('/api/users/ivy/server?wait=true').set(auth);
  });

  test('a periodic reconcile during a start leaves the starting server alone', async () => {
    await request(service.app!).post('/api/users/gina/server').set(auth).send({ user_options: { profile: 'slow' } });
    await new Promise((r) => setTimeout(r, 300));
    const result = await service.lifecycle.reconcile();
    expect(result.removed).toEqual([]);
    expect(result.closed).toEqual([]);
    await waitState('gina', 'running');
    await request(service.app!).delete('/api/users/gina/server?wait=true').set(auth);
  });

  test('a start-up reconcile removes workloads nobody records and closes records whose workload is gone', async () => {
    await request(service.app!).post('/api/users/hank/server').set(auth).send({});
    await waitState('hank', 'running');
    const [w] = (await service.backend.list()).filter((x) => x.labels?.['spawngate/user'] === 'hank');
    // The workload vanishes behind spawngate's back (crash while spawngate was down).
    await service.backend.stop(w!.name, { graceSeconds: 1 });
    const orphan = await service.backend.ensure({ name: 'sg-srv-orphan-0000000000', kind: 'server', labels: {}, command: ['/bin/sleep', '30'], env: {} });
    expect(orphan.phase).toBe('running');
    const result = await service.lifecycle.reconcile({ startup: true });
    expect(result.removed).toContain('sg-srv-orphan-0000000000');
    expect((await service.backend.state('sg-srv-orphan-0000000000')).phase).toBe('missing');
    const res = await request(service.app!).get('/api/users/hank/server').set(auth);
    expect(['failed', 'stopped']).toContain(res.body.state);
  });

  test('progress streams events and ends with ready', async () => {
    await request(service.app!).post('/api/users/erin/servers/lab').set(auth).send({});
    const res = await request(service.app!).get('/api/users/erin/servers/lab/progress').set(auth);
    expect(res.headers['content-type']).toMatch(/text\/event-stream/);
    const events = res.text.split('\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)));
    expect(events[0]).toEqual({ progress: 0, message: 'Server requested' });
    expect(events.at(-1)).toMatchObject({ progress: 100, ready: true });
    expect(events.map((e) => e.progress)).toEqual([...events.map((e) => e.progress)].sort((a, b) => a - b));
    // One voice on the local backend: spawngate's stages, the backend's own step framed like them.
    const messages = events.map((e) => e.message as string);
    expect(messages[1]).toBe(progressText.starting('local'));
    expect(messages).toContain(progressText.answering());
    expect(messages.at(-1)).toBe(progressText.ready(events.at(-1).url));
    for (const m of messages.slice(2, messages.indexOf(progressText.answering()))) expect(m).toMatch(/^Local backend: [A-Z]/);
    for (const m of messages) expect(m).toMatch(/^[A-Z][^\n]*[^.]$/);
    await request(service.app!).delete('/api/users/erin/servers/lab?wait=true').set(auth);
  });

  test('a server that dies after it was ready is reported failed, with its exit code', async () => {
    await request(service.app!).post('/api/users/frank/server').set(auth).send({});
    await waitState('frank', 'running');
    const [w] = (await service.backend.list()).filter((x) => x.labels?.['spawngate/user'] === 'frank');
    process.kill(Number((w!.ref as { pid: number }).pid), 'SIGKILL');
    for (let i = 0; i < 50; i++) {
      const res = await request(service.app!).get('/api/users/frank/server').set(auth);
      if (res.body.state !== 'running') {
        expect(res.body.state).toBe('failed');
        expect(res.body.exit_code).toBe(137);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('death of the server was not noticed within 5 s');
  });
});

describe('documents and health', () => {
  test('OpenAPI document describes the hub API', async () => {
    const res = await request(service.app!).get('/api/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.0.3');
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/api/users/{user}/server', '/api/users/{user}/servers/{name}/progress']));
    expect(res.body.components.schemas.StartRequest.properties.env).toBeDefined();
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/api/kernels', '/api/kernels/{kernel_id}/restart', '/api/kernelspecs']));
    expect(res.body.components.schemas.Kernel.required).toEqual(['id', 'name', 'last_activity', 'execution_state', 'connections']);
  });

  test('Swagger UI is served', async () => {
    const res = await request(service.app!).get('/api/docs/').redirects(1);
    expect(res.status).toBe(200);
    expect(res.text).toContain('swagger-ui');
  });

  test('readyz checks database and queue; metrics expose spawns and latency', async () => {
    const ready = await request(service.app!).get('/readyz');
    expect(ready.body).toEqual({ status: 'ok', checks: { database: 'ok', queue: 'ok' } });
    const metrics = await request(service.app!).get('/metrics');
    expect(metrics.text).toMatch(/spawngate_spawns_total\{outcome="ready"\} [1-9]/);
    expect(metrics.text).toMatch(/spawngate_spawns_total\{outcome="failed"\} [1-9]/);
    expect(metrics.text).toContain('spawngate_spawn_duration_seconds_bucket');
    expect(metrics.text).toContain('spawngate_start_overhead_seconds_count');
    expect(metrics.text).toContain('spawngate_queue_jobs{state="waiting"}');
    expect(metrics.text).toMatch(/spawngate_http_request_duration_seconds_count\{method="POST",route="\/api\/users\/:user\/server"/);
    expect(metrics.text).not.toMatch(/route="[^"]*alice/);
  });
});
