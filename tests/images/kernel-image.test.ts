/**
 * The kernel image under the docker backend (podman's Docker API): spawngate (this checkout, as in
 * tests/e2e/docker-kernels) launches a kernel of alice's conda environment in a container of the
 * built image — no host directories mounted but her home, the launcher and ipykernel are the
 * image's own — as the home's owner with the experiment's limits; the kernel runs code, is
 * interrupted, and is restarted into a new container that answers.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import type WebSocket from 'ws';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { ROOT, startSpawngate, tmpDir, waitFor, type Spawngate } from '../e2e/harness';
import { connectWs, execute } from '../support/jupyter-ws';
import { TEST_UID } from '../support/podman';
import { prepareImages, skipLoudly } from './images';

jest.setTimeout(600_000);

const prepared = prepareImages('kernel');

if (!prepared.images) {
  skipLoudly('kernel image', prepared.unavailable!);
} else {
  const { images } = prepared;
  const docker = new Docker({ socketPath: images.socketPath });
  const run = Math.random().toString(16).slice(2, 8);
  const prefix = `sgimg-${run}`;

  const homes = tmpDir('sg-img-homes');
  const home = path.join(homes, 'alice');
  const spec = path.join(home, '.conda', 'envs', 'tf', 'share', 'jupyter', 'kernels', 'python3');
  fs.mkdirSync(spec, { recursive: true });
  // The image's own Python (an admin-style kernelspec): the environment in the home has no interpreter here.
  fs.writeFileSync(path.join(spec, 'kernel.json'), JSON.stringify({ argv: ['python', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'TF', language: 'python' }));
  execFileSync('chown', ['-R', `${TEST_UID}:${TEST_UID}`, home]);
  const configFile = path.join(tmpDir('sg-img-config'), 'spawngate.yaml');
  // Only the image: no launcher override, no host binds (unlike the busybox test image's suites).
  fs.writeFileSync(configFile, ['kernels:', `  image: ${images.kernel}`, 'docker:', `  label_prefix: ${prefix}`].join('\n'));

  let pg: TestPostgres;
  let sg: Spawngate;
  let token: string;
  const api = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${sg.url}${p}`, { method, headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  const channels = (id: string): Promise<WebSocket> => connectWs(`${sg.url.replace('http', 'ws')}/api/kernels/${id}/channels`, { Authorization: `token ${token}` });
  const containers = async (kernelId?: string) =>
    (await docker.listContainers({ all: true, filters: { label: [`${prefix}.managed=true`] } })).filter((c) => kernelId === undefined || c.Labels.kernel_id === kernelId);

  beforeAll(async () => {
    pg = await createTestPostgres();
    sg = await startSpawngate({
      env: {
        SPAWNGATE_BACKEND: 'docker',
        DOCKER_HOST: `unix://${images.socketPath}`,
        SPAWNGATE_CONFIG: configFile,
        SPAWNGATE_DATABASE_URL: pg.url,
        SPAWNGATE_HOME_ROOT: homes,
      },
    });
    await pg.db.query(`
      INSERT INTO users (username) VALUES ('alice');
      INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('genomics', 0.25, 0.5, 128, 384);
      INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'genomics';
      INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'genomics' AND u.username = 'alice';
    `);
    token = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'spawngate.js'), 'token', '--user', 'alice'], { env: sg.env }).toString().trim();
  });

  afterAll(async () => {
    await sg?.stop();
    await pg?.drop();
    await Promise.all((await containers()).map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  });

  test('a kernel of the image runs code as the home owner with the limits, is interrupted, and restarts', async () => {
    const started = await api('POST', '/api/kernels', { name: 'conda-env-tf-python3' });
    if (started.status !== 201) throw new Error(`launch failed: ${started.status} ${JSON.stringify(started.body)}\n${sg.output().slice(-3000)}`);
    const id = String(started.body.id);
    const [container] = await containers(id);
    const info = await docker.getContainer(container!.Id).inspect();
    expect(info.Config.Image).toBe(images.kernel);
    expect(info.Config.User).toBe(`${TEST_UID}:${TEST_UID}`);
    expect(info.HostConfig.NanoCpus).toBe(500_000_000);
    expect(info.HostConfig.Memory).toBe(384 * 1048576);
    // nothing of the host's software: the kernel's Python, ipykernel and launcher are the image's
    expect((info.HostConfig.Binds ?? []).filter((b) => !b.startsWith(`${home}:`))).toEqual([]);

    let ws = await channels(id);
    try {
      const out = await execute(
        ws,
        [
          'import os, sys, ipykernel, spawngate',
          'mem = open("/sys/fs/cgroup/memory.max").read().split()[0] if os.path.exists("/sys/fs/cgroup/memory.max") else open("/sys/fs/cgroup/memory/memory.limit_in_bytes").read().split()[0]',
          'print(os.getuid(), os.getcwd(), sys.executable, ipykernel.__version__.split(".")[0], spawngate.__file__.startswith("/usr/local/lib/python3"), mem)',
        ].join('\n'),
      );
      expect(out.stdout.trim()).toBe(`${TEST_UID} ${home} /usr/bin/python 6 True ${384 * 1048576}`);
      const sleeping = execute(ws, 'import time; time.sleep(60)', 40_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect((await api('POST', `/api/kernels/${id}/interrupt`)).status).toBe(204);
      expect((await sleeping).reply.content.ename).toBe('KeyboardInterrupt');
      expect((await execute(ws, 'y = 6*7; y')).results).toEqual(['42']);

      expect((await api('POST', `/api/kernels/${id}/restart`)).status).toBe(200);
      const after = await containers(id);
      expect(after).toHaveLength(1);
      expect(after[0]!.Id).not.toBe(container!.Id);
      if (ws.readyState !== ws.OPEN) ws = await channels(id);
      await waitFor('kernel answers after restart', async () => (await execute(ws, "print('y' in globals())", 5000)).stdout.trim() === 'False', 60_000, 500);
    } finally {
      ws.close();
    }
    expect((await api('DELETE', `/api/kernels/${id}`)).status).toBe(204);
    await waitFor('the container removed', async () => (await containers(id)).length === 0, 30_000);
  });
}
