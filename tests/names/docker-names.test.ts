/**
 * Any hub user name on the docker backend against a real engine (podman's Docker API): the home
 * `<homeRoot>/<exact name>` is mounted even when the name holds `:` or spaces (a structured mount, not
 * a `host:container` bind string), the container and the user's network carry the exact name as a
 * label (engine labels accept any value), and the process sees its exact `KERNEL_USERNAME`.
 */
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { createDockerBackend } from '../../src/backends/docker';
import { testLogger as silent } from '../support/logger';
import { HOST_BINDS, TEST_IMAGE, TEST_UID, prepareEngine } from '../support/podman';
import { pollUntil } from '../support/wait';

jest.setTimeout(120_000);

const engine = prepareEngine();
const names = ["a:b c'd", 'Zoë Łódź', 'ünïcode.user'];

if (engine.unavailable) {
  test.skip(`docker names (podman) — skipped: ${engine.unavailable}`, () => undefined);
} else {
  const docker = new Docker({ socketPath: engine.socketPath! });
  const run = `${process.pid}-${Math.random().toString(16).slice(2, 6)}`;
  const homeRoot = mkdtempSync(path.join(os.tmpdir(), 'sg-h15n-docker-'));
  const backend = createDockerBackend({
    connection: { socketPath: engine.socketPath! },
    homeRoot,
    extraBinds: HOST_BINDS,
    networkPerUser: true,
    labelPrefix: `h15n${process.pid}`,
    logger: silent,
  });

  beforeAll(() => {
    for (const name of names) {
      mkdirSync(path.join(homeRoot, name));
      chownSync(path.join(homeRoot, name), TEST_UID, TEST_UID);
    }
  });

  afterAll(async () => {
    await backend.close({ stopAll: true });
    for (const n of await docker.listNetworks({ filters: { label: [`h15n${process.pid}.managed=true`] } })) {
      await docker.getNetwork(n.Name).remove().catch(() => undefined);
    }
    rmSync(homeRoot, { recursive: true, force: true });
  });

  test('homes, labels and KERNEL_USERNAME carry the exact name', async () => {
    const workloads = names.map((name, i) => ({ name, workload: `sg-h15n-${run}-${i}` }));
    for (const { name, workload } of workloads) {
      await backend.ensure({
        name: workload,
        kind: 'kernel',
        image: TEST_IMAGE,
        labels: { 'spawngate/user': name },
        command: ['/bin/sh', '-c', 'printf "%s" "$KERNEL_USERNAME" > "$HOME/who"; exec sleep 600'],
        env: { KERNEL_USERNAME: name },
      });
    }
    for (const { name, workload } of workloads) {
      const who = path.join(homeRoot, name, 'who');
      const read = async () => {
        try {
          return readFileSync(who, 'utf8');
        } catch {
          return undefined;
        }
      };
      expect(await pollUntil(read, (v) => v !== undefined, 60_000)).toBe(name);
      const info = await docker.getContainer(workload).inspect();
      expect(info.Config.Labels['spawngate/user']).toBe(name);
      expect(info.Config.User).toBe(`${TEST_UID}:${TEST_UID}`);
      expect(info.Mounts).toContainEqual(expect.objectContaining({ Type: 'bind', Source: path.join(homeRoot, name), Destination: path.join(homeRoot, name) }));
      const network = Object.keys(info.NetworkSettings.Networks)[0]!;
      const net = (await docker.getNetwork(network).inspect()) as { Labels: Record<string, string> };
      expect(net.Labels[`h15n${process.pid}.user`]).toBe(name);
      const listed = (await backend.list()).find((w) => w.name === workload);
      expect(listed?.labels?.['spawngate/user']).toBe(name);
    }
    for (const { workload } of workloads) await backend.stop(workload, { graceSeconds: 1 });
  });
}
