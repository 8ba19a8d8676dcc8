/**
 * End to end: Debian's JupyterHub 3.0 with `spawner_class = "spawngate"` spawns, polls and stops real
 * `jupyterhub-singleuser` processes through a spawngate CLI process on the embedded default.
 */
import fs from 'node:fs';
import path from 'node:path';
import { serverWorkloadName } from '../../src/profiles';
import { pidAlive, sleep, startHub, startSpawngate, tmpDir, waitFor, type Hub, type Spawngate } from './harness';

jest.setTimeout(180_000);

interface HubUser {
  name: string;
  servers: Record<string, { ready: boolean; pending: string | null; url: string }>;
}

interface SgServer {
  user: string;
  name: string;
  state: string;
  url: string | null;
}

const configDir = tmpDir('sg-config');
const configFile = path.join(configDir, 'spawngate.yaml');
fs.writeFileSync(
  configFile,
  `profiles:
  - slug: standard
    display_name: Standard
    default: true
  - slug: broken
    display_name: Broken on purpose
    command: ["/bin/sh", "-c", "echo 'fatal: cannot open notebook dir boom-marker' >&2; exit 3"]
`,
);

let sg: Spawngate;
let hub: Hub;
// 50 Python servers starting at once need about 75 CPU-seconds: on 2 cores shared with other work that
// is more than the harness's 60 s start timeout, and the hub would give up on the last ones.
const HUB_CONFIG = 'c.Spawner.start_timeout = 150';

async function sgApi<T>(p: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${sg.url}${p}`, { ...init, headers: { Authorization: `token ${sg.hubToken}`, 'Content-Type': 'application/json', ...init.headers } });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** The pid of a user's server, from the local backend's record of its deterministic workload name. */
function localPid(user: string, server = ''): number {
  const file = path.join(sg.dataDir, 'local', `${serverWorkloadName(user, server)}.json`);
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { pid: number }).pid;
}

/**
 * Waits until the hub reports the server ready. A spawn the hub gave up on (the server vanished from its
 * model after it was seen) fails at once with what the hub logged about it and what spawngate recorded.
 */
async function waitReady(user: string, server = '', timeoutMs = 60000, everyMs = 100, abandoned = () => false): Promise<HubUser> {
  let seen = false;
  return waitFor(`${user}/${server} ready`, async () => {
    if (abandoned()) throw new GaveUp(`stopped waiting for ${user}/${server}: another spawn failed`);
    const { body } = await hub.api<HubUser>('GET', `/users/${user}`);
    const model = body.servers?.[server];
    if (model?.ready) return body;
    if (model) seen = true;
    else if (seen) throw new GaveUp(`the hub gave up on ${user}/${server}: ${await whySpawnFailed(user, server)}`);
    return undefined;
  }, timeoutMs, everyMs, (err) => err instanceof GaveUp);
}

class GaveUp extends Error {}

/** The hub's log lines about a user's failed spawn and spawngate's record of the server. */
async function whySpawnFailed(user: string, server: string): Promise<string> {
  const hubSaid = (hub.logFile ? fs.readFileSync(hub.logFile, 'utf8') : hub.output())
    .split('\n')
    .filter((l) => /^\[(E|W)/.test(l) && l.includes(user))
    .slice(-3);
  const { body } = await sgApi<SgServer & { message?: string }>(`/api/users/${user}/server${server ? `s/${server}` : ''}`).catch(() => ({ body: undefined }));
  return `hub: ${hubSaid.join(' | ') || '(nothing logged)'}; spawngate: ${body ? `${body.state}${body.message ? ` (${body.message})` : ''}` : 'no record'}`;
}

async function startServer(user: string, server = '', options?: object): Promise<number> {
  await hub.api('POST', `/users/${user}`);
  const res = await hub.api('POST', `/users/${user}/server${server ? `s/${server}` : ''}`, options);
  return res.status;
}

async function stopServer(user: string, server = ''): Promise<void> {
  await hub.api('DELETE', `/users/${user}/server${server ? `s/${server}` : ''}`);
  await waitFor(`${user}/${server} stopped`, async () => {
    const { body } = await hub.api<HubUser>('GET', `/users/${user}`);
    return !body.servers?.[server];
  }, 30000);
}

function readProgress(user: string, server = ''): Promise<Array<Record<string, unknown>>> {
  return (async () => {
    const res = await fetch(`${hub.url}/hub/api/users/${user}/server${server ? `s/${server}` : ''}/progress`, { headers: { Authorization: `token ${hub.token}` } });
    const text = await res.text();
    return text
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => JSON.parse(l.slice(5)) as Record<string, unknown>);
  })();
}

/**
 * The failure a hub reports for a spawn that fails fast: the `failed` event of its progress stream, or —
 * when the failure finished before the progress request arrived and the hub has no stream left — the
 * spawn error the hub logged. Either way it must carry spawngate's message.
 */
async function spawnFailure(h: Hub, user: string, expected: RegExp): Promise<void> {
  const res = await fetch(`${h.url}/hub/api/users/${user}/server/progress`, { headers: { Authorization: `token ${h.token}` } });
  const events = (await res.text()).split('\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)) as Record<string, unknown>);
  const last = events[events.length - 1];
  if (last) {
    expect(last.failed).toBe(true);
    expect(String(last.message)).toMatch(expected);
  } else {
    await waitFor('the hub to report the failed spawn', async () => expected.test(h.output()), 10_000);
  }
}

beforeAll(async () => {
  sg = await startSpawngate({ env: { SPAWNGATE_CONFIG: configFile } });
  hub = await startHub({ spawngateUrl: sg.url, hubToken: sg.hubToken, extraConfig: HUB_CONFIG });
});

afterAll(async () => {
  await hub?.stop();
  await sg?.stop();
});

test('spawn, reach through the proxy, read progress, stop: the process is gone', async () => {
  expect(await startServer('alice')).toBeLessThan(300);
  const progress = readProgress('alice');
  await waitReady('alice');
  const events = await progress;
  expect(events.some((e) => /local backend/.test(String(e.message)))).toBe(true);
  expect(events[events.length - 1]).toMatchObject({ ready: true });

  const status = await fetch(`${hub.url}/user/alice/api/status`, { headers: { Authorization: `token ${hub.token}` } });
  expect(status.status).toBe(200);
  const pid = localPid('alice');
  expect(pidAlive(pid)).toBe(true);

  // The server got the gateway variables, and none of the secrets it holds reached spawngate's log.
  const environ = Object.fromEntries(
    fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  expect(environ.JUPYTER_GATEWAY_URL).toBe(sg.url);
  expect(environ.KERNEL_USERNAME).toBe('alice');
  expect(environ.JUPYTER_GATEWAY_AUTH_TOKEN).toMatch(/^sg_/);
  expect(environ.JUPYTERHUB_SERVICE_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/user\/alice\/$/);
  const secrets = [environ.JUPYTERHUB_API_TOKEN, environ.JPY_API_TOKEN, environ.JUPYTER_GATEWAY_AUTH_TOKEN, sg.hubToken, sg.adminToken];
  const log = sg.output();
  expect(log).toContain('server ready');
  for (const secret of secrets) {
    expect(secret).toBeTruthy();
    expect(log).not.toContain(secret);
  }

  await stopServer('alice');
  await waitFor('alice process gone', async () => !pidAlive(pid), 10000);
  const { body } = await sgApi<SgServer>('/api/users/alice/server');
  expect(body.state).toBe('stopped');
});

test('a repeated start of a running server creates no second process', async () => {
  await startServer('bob');
  await waitReady('bob');
  const pid = localPid('bob');
  // The hub refuses a second start itself; ask spawngate directly as a retrying hub would.
  const again = await sgApi<SgServer>('/api/users/bob/server', { method: 'POST', body: JSON.stringify({ env: {}, user_options: {} }) });
  expect(again.status).toBe(200);
  expect(again.body.state).toBe('running');
  expect(localPid('bob')).toBe(pid);
  const all = await sgApi<{ servers: SgServer[] }>('/api/servers?user=bob');
  expect(all.body.servers).toHaveLength(1);
  await stopServer('bob');
});

test('two named servers per user run side by side and stop independently', async () => {
  await startServer('carol', 'one');
  await startServer('carol', 'two');
  const ready = await waitReady('carol', 'one');
  await waitReady('carol', 'two');
  expect(ready.servers.one!.url).toBe('/user/carol/one/');
  const r1 = await fetch(`${hub.url}/user/carol/one/api/status`, { headers: { Authorization: `token ${hub.token}` } });
  const r2 = await fetch(`${hub.url}/user/carol/two/api/status`, { headers: { Authorization: `token ${hub.token}` } });
  expect([r1.status, r2.status]).toEqual([200, 200]);
  await stopServer('carol', 'one');
  const two = await sgApi<SgServer>('/api/users/carol/servers/two');
  expect(two.body.state).toBe('running');
  await stopServer('carol', 'two');
});

test('a server whose command exits at once fails within seconds with its last output', async () => {
  const started = Date.now();
  await startServer('dave', '', { profile: 'broken' });
  await spawnFailure(hub, 'dave', /boom-marker/);
  expect(Date.now() - started).toBeLessThan(10_000);
  const { body } = await hub.api<HubUser>('GET', '/users/dave');
  expect(body.servers['']).toBeUndefined();
});

test('an unknown profile is refused with a message the hub shows', async () => {
  await hub.api('POST', '/users/erin');
  const res = await hub.api<{ message: string }>('POST', '/users/erin/server', { profile: 'does-not-exist' });
  expect(res.status).toBeLessThan(300);
  await spawnFailure(hub, 'erin', /unknown profile 'does-not-exist'; available: 'standard', 'broken'/);
  const { body } = await sgApi<SgServer>('/api/users/erin/server');
  expect(body).toMatchObject({ reason: 'Not Found' });
});

test('the hub restarts while a server runs and still reaches and stops it', async () => {
  await startServer('frank');
  await waitReady('frank');
  const pid = localPid('frank');
  await hub.stop();
  expect(pidAlive(pid)).toBe(true);
  hub = await startHub({ spawngateUrl: sg.url, hubToken: sg.hubToken, dir: hub.dir, extraConfig: HUB_CONFIG });
  await waitReady('frank');
  // The restarted hub re-creates its proxy routes shortly after it reports the server ready.
  await waitFor('frank reachable through the new proxy', async () => {
    const status = await fetch(`${hub.url}/user/frank/api/status`, { headers: { Authorization: `token ${hub.token}` } });
    return status.status === 200;
  }, 15000);
  await stopServer('frank');
  await waitFor('frank process gone', async () => !pidAlive(pid), 10000);
});

test('kill -9 of spawngate with a server running: after restart the server is re-adopted and stops cleanly', async () => {
  await startServer('grace');
  await waitReady('grace');
  const pid = localPid('grace');
  sg.child.kill('SIGKILL');
  await sg.exited;
  expect(pidAlive(pid)).toBe(true);
  // The hub polls during the outage: the server must not be declared dead.
  await sleep(1500);
  expect((await hub.api<HubUser>('GET', '/users/grace')).body.servers['']).toBeDefined();
  sg = await startSpawngate({ dataDir: sg.dataDir, port: sg.port, env: { SPAWNGATE_CONFIG: configFile } });
  const { body } = await sgApi<SgServer>('/api/users/grace/server');
  expect(body.state).toBe('running');
  await stopServer('grace');
  await waitFor('grace process gone', async () => !pidAlive(pid), 10000);
});

test('50 users started at once all become ready, none twice', async () => {
  const users = Array.from({ length: 50 }, (_, i) => `load${i}`);
  await Promise.all(users.map((u) => hub.api('POST', `/users/${u}`)));
  await Promise.all(users.map((u) => hub.api('POST', `/users/${u}/server`)));
  // Every 500 ms, not 100: 50 users polled ten times a second is itself a load the hub notices.
  let failed = false; // the first failure ends every other wait too, so nothing polls on after the test
  await Promise.all(
    users.map((u) =>
      waitReady(u, '', 150_000, 500, () => failed).catch((err: unknown) => {
        failed = true;
        throw err;
      }),
    ),
  );
  const { body } = await sgApi<{ servers: SgServer[] }>('/api/servers');
  const running = body.servers.filter((s) => s.user.startsWith('load') && s.state === 'running');
  expect(running).toHaveLength(50);
  const pids = users.map((u) => localPid(u));
  expect(new Set(pids).size).toBe(pids.length);
  expect(pids.filter(pidAlive).length).toBe(50);
  await Promise.all(users.map((u) => hub.api('DELETE', `/users/${u}/server`)));
  await waitFor('all load servers stopped', async () => {
    const { body: b } = await sgApi<{ servers: SgServer[] }>('/api/servers');
    return b.servers.filter((s) => s.user.startsWith('load') && s.state !== 'stopped').length === 0;
  }, 120_000, 500);
  expect(pids.filter(pidAlive)).toEqual([]);
});

test('spawngate unreachable: the spawn fails promptly with an error naming the service URL', async () => {
  const deadHub = await startHub({ spawngateUrl: 'http://127.0.0.1:9', hubToken: sg.hubToken });
  try {
    await deadHub.api('POST', '/users/henry');
    const started = Date.now();
    await deadHub.api('POST', '/users/henry/server');
    await spawnFailure(deadHub, 'henry', /http:\/\/127\.0\.0\.1:9\b/);
    expect(Date.now() - started).toBeLessThan(15_000);
  } finally {
    await deadHub.stop();
  }
});
