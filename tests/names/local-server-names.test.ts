/**
 * Any hub user name through a real service (embedded Postgres, in-process queue, local backend running
 * each server as the real system user owning `SPAWNGATE_HOME_ROOT/<exact name>`): names that differ
 * only in escaped characters get distinct workloads, each workload carries the exact name
 * (`KERNEL_USERNAME`, HOME, the user label), and a server whose workload was named by the earlier,
 * lossy scheme is still found — adopted by reconcile, stopped by name — after the change.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { isValidWorkloadName } from '../../src/backends';
import { createService, type Service } from '../../src/compose';
import { loadConfig } from '../../src/config';
import { claimServerStart, findServer, transitionServer } from '../../src/db';
import { serverWorkloadName } from '../../src/profiles';
import { canCreateUsers, createSystemUser, removeSystemUsers, type SystemUser } from '../support/system-users';

jest.setTimeout(120_000);

/** The server workload name before the change (copied from the earlier src/profiles/names.ts): lossy readable part plus a hash. */
function legacyServerWorkloadName(username: string, serverName: string): string {
  const hash = createHash('sha256').update(`${username}/${serverName}`).digest('hex').slice(0, 10);
  const readable = `${username}${serverName ? `-${serverName}` : ''}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return readable ? `sg-srv-${readable}-${hash}` : `sg-srv-${hash}`;
}

/** The user label before the change: a lossy, collision-prone copy of the name. */
function legacyUserLabelValue(username: string): string {
  return username.toLowerCase().replace(/[^a-z0-9._-]/g, '-').slice(0, 63);
}

const HUB = 'hub-token-for-h15n-names-0123456789';
const cannot = canCreateUsers();
const names = ['a b', 'a-b', 'a.b', "o'neil", 'Ünïcode.User', 'zoë-łódź'];
const LEGACY = 'Ünïcode.Legacy';

(cannot ? describe.skip : describe)(`server names through the local backend${cannot ? ` (skipped: ${cannot})` : ''}`, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-h15n-'));
  const homeRoot = path.join(dir, 'home');
  const systemUsers: SystemUser[] = [];
  let service: Service;
  const auth = { Authorization: `token ${HUB}` };
  const userPath = (name: string) => `/api/users/${encodeURIComponent(name)}/server`;

  beforeAll(async () => {
    fs.mkdirSync(homeRoot, { recursive: true });
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(homeRoot, 0o755);
    // One system user per hub name; its home directory is named by the hub name, exactly.
    [...names, LEGACY].forEach((name, i) => {
      const u = createSystemUser(`h15n-u${i}-${process.pid % 10000}`, path.join(dir, 'sys'));
      systemUsers.push(u);
      const home = path.join(homeRoot, name);
      fs.mkdirSync(home);
      fs.chownSync(home, u.uid, u.gid);
      fs.chmodSync(home, 0o700);
    });
    fs.chmodSync(path.join(dir, 'sys'), 0o755);
    fs.writeFileSync(
      path.join(dir, 'config.yaml'),
      `profiles:
  - slug: web
    display_name: Python web server recording who it runs for
    default: true
    command: ["/bin/sh", "-c", "printf '%s' \\"$KERNEL_USERNAME\\" > \\"$HOME/who\\"; exec /usr/bin/python3 -m http.server {port} --bind 127.0.0.1"]
`,
    );
    service = await createService(
      loadConfig({
        SPAWNGATE_DATA_DIR: path.join(dir, 'data'),
        SPAWNGATE_HUB_TOKEN: HUB,
        SPAWNGATE_CONFIG: path.join(dir, 'config.yaml'),
        SPAWNGATE_HOME_ROOT: homeRoot,
        SPAWNGATE_PORT: '0',
      }),
    );
  });

  afterAll(async () => {
    await service?.lifecycle.stopAllNow(1);
    await service?.close();
    removeSystemUsers(systemUsers);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('names differing only in escaped characters get distinct workloads, each with the exact name', async () => {
    for (const name of names) expect([name, (await request(service.app!).post(userPath(name)).set(auth).send({})).status]).toEqual([name, 202]);
    for (const name of names) {
      const res = await request(service.app!).get(`${userPath(name)}?wait=ready&timeout=60`).set(auth);
      expect([name, res.body.state, res.body.message]).toEqual([name, 'running', null]);
      expect(res.body.user).toBe(name);
    }
    const workloads = (await service.backend.list()).filter((w) => w.name.startsWith('sg-srv-'));
    const byUser = new Map(names.map((n) => [n, workloads.filter((w) => w.labels?.['spawngate/user'] === n)]));
    for (const [name, ws] of byUser) {
      expect([name, ws.length]).toEqual([name, 1]);
      expect(ws[0]!.name).toBe(serverWorkloadName(name, ''));
      expect(isValidWorkloadName(ws[0]!.name)).toBe(true);
      // KERNEL_USERNAME is the exact name, HOME is `<home root>/<exact name>`, and the process ran as its owner.
      const who = path.join(homeRoot, name, 'who');
      expect(fs.readFileSync(who, 'utf8')).toBe(name);
      expect(fs.statSync(who).uid).toBe(fs.statSync(path.join(homeRoot, name)).uid);
    }
    expect(new Set(workloads.map((w) => w.name)).size).toBe(workloads.length);
    // The earlier scheme collapsed these: `a b`, `a-b` and `a.b` all read `a-b` (`a.b` kept its dot).
    expect(legacyUserLabelValue('a b')).toBe(legacyUserLabelValue('a-b'));
    for (const name of names) expect((await request(service.app!).delete(`${userPath(name)}?wait=true`).set(auth)).status).toBe(200);
  });

  test('a named server whose name has spaces and non-ASCII letters runs beside the default one, under its own workload', async () => {
    const user = "o'neil";
    const server = 'my server ü';
    const named = `/api/users/${encodeURIComponent(user)}/servers/${encodeURIComponent(server)}`;
    expect((await request(service.app!).post(userPath(user)).set(auth).send({})).status).toBe(202);
    expect((await request(service.app!).post(named).set(auth).send({})).status).toBe(202);
    const res = await request(service.app!).get(`${named}?wait=ready&timeout=60`).set(auth);
    expect([res.body.state, res.body.name, res.body.user]).toEqual(['running', server, user]);
    expect((await request(service.app!).get(`${userPath(user)}?wait=ready&timeout=60`).set(auth)).body.state).toBe('running');
    const running = (await service.backend.list()).filter((w) => w.labels?.['spawngate/user'] === user && w.phase === 'running').map((w) => w.name);
    expect(running.sort()).toEqual([serverWorkloadName(user, ''), serverWorkloadName(user, server)].sort());
    expect(serverWorkloadName(user, server)).toBe('sg-srv-o-27neil-2fmy-20server-20-c3-bc');
    for (const p of [named, userPath(user)]) expect((await request(service.app!).delete(`${p}?wait=true`).set(auth)).status).toBe(200);
  });

  test('a server whose workload was named by the earlier scheme is adopted, stopped by that name, and restarts under the new one', async () => {
    const legacyName = legacyServerWorkloadName(LEGACY, '');
    expect(legacyName).not.toBe(serverWorkloadName(LEGACY, ''));
    // What a spawngate before the change left running: its workload and its row.
    const { row } = await claimServerStart(service.db, { username: LEGACY, serverName: '', workloadName: legacyName, backend: service.backend.name, profile: 'web', userOptions: {} });
    const w = await service.backend.ensure({
      name: legacyName,
      kind: 'server',
      labels: { 'spawngate/user': legacyUserLabelValue(LEGACY), 'spawngate/server-id': String(row.id) },
      command: ['/usr/bin/python3', '-m', 'http.server', '{port}', '--bind', '127.0.0.1'],
      env: { KERNEL_USERNAME: LEGACY },
      ports: { http: 0 },
    });
    expect(w.phase).toBe('running');
    await transitionServer(service.db, row.id, row.generation, ['pending'], 'running', { url: 'http://127.0.0.1:1/' });

    const result = await service.lifecycle.reconcile({ startup: true });
    expect(result.removed).not.toContain(legacyName);
    expect(result.adopted).toContain(row.id);
    expect((await service.backend.state(legacyName)).phase).toBe('running');
    expect((await request(service.app!).get(userPath(LEGACY)).set(auth)).body.state).toBe('running');

    expect((await request(service.app!).delete(`${userPath(LEGACY)}?wait=true`).set(auth)).status).toBe(200);
    expect((await service.backend.state(legacyName)).phase).toBe('missing');

    // Started again, the server takes the new naming.
    expect((await request(service.app!).post(userPath(LEGACY)).set(auth).send({})).status).toBe(202);
    expect((await request(service.app!).get(`${userPath(LEGACY)}?wait=ready&timeout=60`).set(auth)).body.state).toBe('running');
    expect((await findServer(service.db, LEGACY, ''))!.workload_name).toBe(serverWorkloadName(LEGACY, ''));
    expect(fs.readFileSync(path.join(homeRoot, LEGACY, 'who'), 'utf8')).toBe(LEGACY);
    await request(service.app!).delete(`${userPath(LEGACY)}?wait=true`).set(auth);
  });

  test('names JupyterHub refuses are refused with a reason; a name that is only odd is not', async () => {
    for (const [bad, reason] of [
      ['..', /'\.' or '\.\.'/],
      [' lead', /whitespace/],
      ['a%00b', /control/],
    ] as const) {
      const res = await request(service.app!).post(`/api/users/${bad.includes('%') ? bad : encodeURIComponent(bad)}/server`).set(auth).send({});
      expect([bad, res.status]).toEqual([bad, 400]);
      expect(res.body.message).toMatch(reason);
    }
    const odd = await request(service.app!).get(`/api/users/${encodeURIComponent("50%off & o'neil")}/profiles`).set(auth);
    expect(odd.status).toBe(200);
  });
});
