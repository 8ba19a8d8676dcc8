/**
 * The docker backend against a real engine: podman's Docker-compatible API, set up by
 * scripts/setup-podman.sh (installs podman/runc/busybox-static if missing, starts the service, builds
 * `localhost/spawngate-test:latest`). The shared contract suite runs first, then what only a container
 * backend has: limits seen by the engine and inside the container, exits caused from outside, adoption
 * across instances, refusing foreign containers and root, unknown images, a daemon that is down.
 *
 * Containers run the host's Debian Python through read-only bind mounts of /usr, /lib, /lib64 and /bin.
 * If this machine cannot run containers at all, every test is skipped with the reason in its title.
 */
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { createDockerBackend, type DockerBackendOptions } from '../../src/backends/docker';
import {
  PermanentBackendError,
  TransientBackendError,
  type WorkloadEvent,
  type WorkloadSpec,
} from '../../src/backends/types';
import { labelKeys } from '../../src/backends/docker/container-spec';
import { stateFromInspect } from '../../src/backends/docker/container-state';
import { lastLines, timestampedText } from '../../src/backends/docker/log-frames';
import { HOST_BINDS, PODMAN_DIR, TEST_IMAGE as IMAGE, TEST_UID as UID, podman as podmanAt, prepareEngine } from '../support/podman';
import { readLine, SLEEP_FOREVER, testBackend, waitFor } from './contract';

const PY = '/usr/bin/python3';

const silent = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
} as unknown as DockerBackendOptions['logger'];

const engine = prepareEngine();

if (engine.unavailable) {
  console.warn(`\n*** docker backend tests SKIPPED: ${engine.unavailable} ***\n`);
  test.skip(`docker backend (podman) — skipped: ${engine.unavailable}`, () => undefined);
} else {
  const socketPath = engine.socketPath!;
  const docker = new Docker({ socketPath });
  const podman = (...args: string[]) => podmanAt(socketPath, ...args);

  const baseOptions = (extra: Partial<DockerBackendOptions> = {}): DockerBackendOptions => ({
    connection: { socketPath },
    runAsUser: UID,
    extraBinds: HOST_BINDS,
    logger: silent,
    ...extra,
  });

  const makeSpec = (overrides: Partial<WorkloadSpec> & { name: string }): WorkloadSpec => ({
    kind: 'kernel',
    labels: { 'spawngate.test/suite': 'docker' },
    image: IMAGE,
    command: [PY, '-c', SLEEP_FOREVER],
    env: {},
    ...overrides,
  });

  /** Removes every container whose name starts with `prefix` (whatever a failed test left). */
  const removeAll = async (prefix: string) => {
    const all = await docker.listContainers({ all: true });
    await Promise.all(
      all
        .filter((c) => c.Names.some((n) => n.replace(/^\//, '').startsWith(prefix)))
        .map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)),
    );
  };

  /** The per-user networks specs with a user made (user-networks.ts), once no container uses them. */
  const removeEmptyUserNetworks = async () => {
    for (const n of await docker.listNetworks({ filters: { label: ['spawngate.managed=true'] } })) {
      const info = (await docker.getNetwork(n.Name).inspect().catch(() => undefined)) as { Containers?: object } | undefined;
      if (info && Object.keys(info.Containers ?? {}).length === 0) await docker.getNetwork(n.Name).remove().catch(() => undefined);
    }
  };

  testBackend({
    name: 'docker (podman)',
    create: async () => ({
      backend: createDockerBackend(baseOptions()),
      another: () => createDockerBackend(baseOptions()),
      makeForeign: async (name) => {
        podman('create', '--name', name, IMAGE, 'sleep', '600');
        return {
          exists: async () => !!(await docker.getContainer(name).inspect().catch(() => undefined)),
          remove: async () => void podman('rm', '-f', name),
        };
      },
      cleanup: () => removeAll('sg-ct-'),
    }),
    makeSpec,
    python: PY,
    timeoutMs: 20_000,
  });

  describe('docker backend (podman)', () => {
    const run = Math.random().toString(16).slice(2, 8);
    let counter = 0;
    const newName = () => `sg-dk-${run}-${++counter}`;
    const backend = createDockerBackend(baseOptions());
    let homeRoot: string;

    beforeAll(() => {
      homeRoot = mkdtempSync(path.join(os.tmpdir(), 'sg-docker-home-'));
      mkdirSync(path.join(homeRoot, 'alice'));
      chownSync(path.join(homeRoot, 'alice'), UID, UID);
      mkdirSync(path.join(homeRoot, 'root-owned'));
    });
    afterAll(async () => {
      await backend.close();
      await removeAll(`sg-dk-${run}-`);
      await removeEmptyUserNetworks();
      rmSync(homeRoot, { recursive: true, force: true });
    });

    const logsUntil = (name: string, ok: (l: string[]) => boolean) =>
      waitFor(() => backend.logs(name, 50), ok, 20_000);

    test('logs of short-lived containers keep lines printed in two writes (podman tail drops them)', async () => {
      // print() writes text and newline separately; podman 4.3 stores them as a partial and a full
      // entry and its `tail` returned only the empty full one for about 1 in 4 such containers.
      const names = Array.from({ length: 12 }, () => newName());
      await Promise.all(
        names.map((name, i) =>
          backend.ensure(makeSpec({ name, command: [PY, '-u', '-c', `print("line-${i}-" + "x" * 200)`] })),
        ),
      );
      for (const [i, name] of names.entries()) {
        await waitFor(() => backend.state(name), (s) => s.phase === 'exited', 20_000);
        expect(await backend.logs(name, 5)).toEqual([`line-${i}-${'x'.repeat(200)}`]);
      }
      await Promise.all(names.map((n) => backend.stop(n)));
    });

    test('a kernel connection secret becomes a file only the container user can read, never env', async () => {
      const name = newName();
      const secret = JSON.stringify({ key: `hmac-key-${run}`, shell_port: 52317 });
      await backend.ensure(
        makeSpec({
          name,
          env: { SPAWNGATE_CONNECTION_INFO: secret, KEEP: 'visible' },
          command: [
            '/bin/sh',
            '-c',
            'stat -c "%a %u %g" /var/run/spawngate /var/run/spawngate/connection.json; cat "$SPAWNGATE_CONNECTION_SOURCE"; echo; env | grep -c hmac-key; sleep 600',
          ],
        }),
      );
      const lines = await logsUntil(name, (l) => l.length >= 4);
      expect(lines).toEqual([`700 ${UID} ${UID}`, `400 ${UID} ${UID}`, secret, '0']);
      const info = await docker.getContainer(name).inspect();
      expect(info.Config.Env).toContain('SPAWNGATE_CONNECTION_SOURCE=/var/run/spawngate/connection.json');
      expect(info.Config.Env).toContain('KEEP=visible');
      expect(JSON.stringify(info)).not.toContain(`hmac-key-${run}`);
      await backend.stop(name, { graceSeconds: 0 });
    });

    test('on a user-defined network a workload is reached at its address there, on its own port', async () => {
      const network = `sg-dk-net-${run}`;
      await docker.createNetwork({ Name: network });
      const onNet = createDockerBackend(baseOptions({ network }));
      try {
        const name = newName();
        const code = 'import socket\ns = socket.socket(); s.bind(("", 5555)); s.listen()\nprint("ready", flush=True)\nwhile True:\n    c, _ = s.accept(); c.sendall(b"on-net\\n"); c.close()';
        await onNet.ensure(makeSpec({ name, command: [PY, '-c', code], ports: { default: 5555 } }));
        await logsUntil(name, (l) => l.includes('ready'));
        const state = await onNet.state(name);
        const info = await docker.getContainer(name).inspect();
        const ip = (info.NetworkSettings.Networks as Record<string, { IPAddress: string }>)[network]!.IPAddress;
        expect(state).toMatchObject({ phase: 'running', host: ip, ports: { default: 5555 } });
        // Nothing is published on the host (podman lists the exposed port with a null binding).
        expect(Object.values(info.HostConfig.PortBindings ?? {}).flatMap((b) => b ?? [])).toEqual([]);
        expect(await readLine(state.host!, 5555)).toBe('on-net');
        await onNet.stop(name, { graceSeconds: 0 });
      } finally {
        await onNet.close();
        await docker.getNetwork(network).remove().catch(() => undefined);
      }
    });

    test('limits are applied: visible in inspect and inside the container', async () => {
      const name = newName();
      await backend.ensure(
        makeSpec({
          name,
          command: [
            '/bin/sh',
            '-c',
            'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; echo done; sleep 600',
          ],
          resources: { cpuLimit: 0.5, cpuRequest: 0.25, memoryLimitMiB: 128, memoryRequestMiB: 64 },
        }),
      );
      const info = await docker.getContainer(name).inspect();
      expect(info.HostConfig.NanoCpus).toBe(500_000_000);
      expect(info.HostConfig.Memory).toBe(128 * 1024 * 1024);
      expect(info.HostConfig.CpuShares).toBe(256);
      expect(info.HostConfig.MemoryReservation).toBe(64 * 1024 * 1024);
      expect(info.HostConfig.RestartPolicy?.Name ?? 'no').toMatch(/^(no|)$/);
      expect(info.HostConfig.SecurityOpt).toEqual(expect.arrayContaining([expect.stringMatching(/no-new-privileges/)]));
      expect(info.HostConfig.CapAdd ?? []).toEqual([]);
      const lines = await logsUntil(name, (l) => l.includes('done'));
      // cgroup v1 here (memory.limit_in_bytes); cgroup v2 engines show memory.max.
      expect(lines[0]).toBe(String(128 * 1024 * 1024));
      await backend.stop(name, { graceSeconds: 0 });
    });

    test('a container killed from outside is reported by watch with its reason', async () => {
      const events: WorkloadEvent[] = [];
      const unsubscribe = backend.watch((e) => events.push(e));
      try {
        const name = newName();
        await backend.ensure(makeSpec({ name }));
        await logsUntil(name, (l) => l.includes('ready'));
        const t0 = Date.now();
        podman('kill', '--signal', 'KILL', name);
        const exited = () =>
          events.find((e) => e.name === name && e.type === 'state' && e.state?.phase === 'exited')?.state;
        await waitFor(async () => exited(), (s) => !!s, 5_000);
        expect(Date.now() - t0).toBeLessThan(5_000);
        expect(exited()).toMatchObject({ phase: 'exited', exitCode: 137 });
        expect(exited()!.reason).toMatch(/137.*SIGKILL/);
        await backend.stop(name);
      } finally {
        unsubscribe();
      }
    });

    test('a second backend instance adopts the container instead of creating another', async () => {
      const other = createDockerBackend(baseOptions());
      try {
        const spec = makeSpec({ name: newName() });
        const [a, b] = await Promise.all([backend.ensure(spec), other.ensure(spec)]);
        expect(b.ref!.id).toBe(a.ref!.id);
        const events: WorkloadEvent[] = [];
        const c = await other.ensure(spec, (e) => events.push(e));
        expect(c.ref!.id).toBe(a.ref!.id);
        expect(events.map((e) => e.message)).toContainEqual(expect.stringMatching(/adopted/));
        const same = (await docker.listContainers({ all: true })).filter((x) => x.Names.includes(`/${spec.name}`));
        expect(same).toHaveLength(1);
        await backend.stop(spec.name, { graceSeconds: 0 });
      } finally {
        await other.close();
      }
    });

    test('a created-but-not-started container of ours is started on adoption', async () => {
      const spec = makeSpec({ name: newName() });
      // Create through one instance's create body, but do not start: simulate a crash between the two.
      await backend.ensure(spec);
      const id = (await docker.getContainer(spec.name).inspect()).Id;
      await docker.getContainer(id).stop({ t: 0 });
      await docker.getContainer(id).remove({ force: true });
      const labels = { 'spawngate.managed': 'true', 'spawngate.name': spec.name, 'spawngate.ports': '{}' };
      await docker.createContainer({
        name: spec.name,
        Image: IMAGE,
        Cmd: [PY, '-u', '-c', SLEEP_FOREVER],
        User: `${UID}:${UID}`,
        Labels: labels,
        HostConfig: { Binds: HOST_BINDS },
      });
      const state = await backend.ensure(spec);
      expect(state.phase).toBe('running');
      await backend.stop(spec.name, { graceSeconds: 0 });
    });

    test('a foreign container with the same name is refused, never adopted or removed', async () => {
      const name = newName();
      podman('create', '--name', name, IMAGE, 'sleep', '600');
      try {
        await expect(backend.ensure(makeSpec({ name }))).rejects.toThrow(PermanentBackendError);
        await expect(backend.ensure(makeSpec({ name }))).rejects.toThrow(/not managed by spawngate/);
        await expect(backend.stop(name)).rejects.toThrow(PermanentBackendError);
        expect((await backend.state(name)).phase).toBe('missing');
        expect((await docker.getContainer(name).inspect()).Name).toBe(`/${name}`);
      } finally {
        podman('rm', '-f', name);
      }
    });

    test('stop resolves when the container was already removed behind our back', async () => {
      const name = newName();
      await backend.ensure(makeSpec({ name }));
      podman('rm', '-f', name);
      await expect(backend.stop(name)).resolves.toBeUndefined();
      expect((await backend.state(name)).phase).toBe('missing');
    });

    test('runs as the home owner (never root) with the home mounted at the same path', async () => {
      const homes = createDockerBackend(baseOptions({ runAsUser: undefined, homeRoot }));
      try {
        const name = newName();
        const home = path.join(homeRoot, 'alice');
        await homes.ensure(
          makeSpec({
            name,
            labels: { 'spawngate/user': 'alice' },
            command: ['/bin/sh', '-c', 'id -u; id -g; pwd; echo "$HOME"; touch "$HOME/written" && echo wrote; sleep 600'],
          }),
        );
        const lines = await waitFor(() => homes.logs(name, 10), (l) => l.length >= 5, 20_000);
        expect(lines).toEqual([String(UID), String(UID), home, home, 'wrote']);
        await homes.stop(name, { graceSeconds: 0 });

        const rootName = newName();
        await expect(
          homes.ensure(makeSpec({ name: rootName, labels: { 'spawngate/user': 'root-owned' } })),
        ).rejects.toThrow(/refusing to run .* as root/);
        await expect(
          homes.ensure(makeSpec({ name: rootName, labels: { 'spawngate/user': 'nobody-here' } })),
        ).rejects.toThrow(PermanentBackendError);
        expect((await homes.state(rootName)).phase).toBe('missing');
      } finally {
        await homes.close();
      }
    });

    test('an OOM-killed container reports OOMKilled (or, where the engine cannot tell, a memory hint)', async () => {
      const name = newName();
      await backend.ensure(
        makeSpec({
          name,
          command: [PY, '-c', 'x = bytearray(512 * 1024 * 1024)\nprint("survived", flush=True)'],
          resources: { memoryLimitMiB: 64 },
        }),
      );
      const state = await waitFor(() => backend.state(name), (s) => s.phase === 'exited', 20_000);
      expect(state).toMatchObject({ phase: 'exited', exitCode: 137 });
      if (state.reason !== 'OOMKilled') {
        // podman 4 with runc on cgroup v1 (this machine) reports State.OOMKilled=false and sends no `oom` event.
        console.warn(`engine did not report OOMKilled; reason given: ${state.reason}`);
        expect(state.reason).toBe('exited with status 137 (SIGKILL; it may have exceeded its memory limit of 64 MiB)');
      }
      await backend.stop(name);
    });

    test('an engine-reported OOM kill becomes reason "OOMKilled"', () => {
      const info = {
        Id: 'abc',
        Name: '/sg-x',
        Created: '',
        Config: { Labels: { 'spawngate.managed': 'true' }, Image: IMAGE },
        State: { Status: 'exited', ExitCode: 137, OOMKilled: true, Error: '' },
        HostConfig: { Memory: 64 * 1048576 },
        NetworkSettings: {},
      } as unknown as Docker.ContainerInspectInfo;
      expect(stateFromInspect('sg-x', info, labelKeys('spawngate'), { publishHost: '127.0.0.1' })).toMatchObject({
        phase: 'exited',
        exitCode: 137,
        reason: 'OOMKilled',
      });
    });

    test('log pieces the engine returns out of order are put back in time order', () => {
      // What podman 4.3's tail returned for `print("ready")` written as "ready" + "\n" by python -u.
      const frame = (text: string) => {
        const payload = Buffer.from(text);
        const header = Buffer.alloc(8);
        header[0] = 1;
        header.writeUInt32BE(payload.length, 4);
        return Buffer.concat([header, payload]);
      };
      const buf = Buffer.concat([
        frame('2026-11-23T00:28:50.0082Z ready'),
        frame('2026-11-23T00:28:51.648478063Z got usr1\n'),
        frame('2026-11-23T00:28:50.00821Z \n'),
      ]);
      expect(lastLines(timestampedText(buf), 10)).toEqual(['ready', 'got usr1']);
    });

    test('an unknown image is a PermanentBackendError naming the image', async () => {
      const image = `localhost/sg-no-such-image-${run}:v1`;
      const events: WorkloadEvent[] = [];
      const err = await backend.ensure(makeSpec({ name: newName(), image }), (e) => events.push(e)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PermanentBackendError);
      expect((err as Error).message).toContain(image);
      expect(events.map((e) => e.message)).toContainEqual(expect.stringContaining(`pulling image ${image}`));
    });

    test('a daemon that is down is a TransientBackendError that says so', async () => {
      const down = createDockerBackend(baseOptions({ connection: { socketPath: path.join(PODMAN_DIR, 'nothing.sock') } }));
      const err = await down.ensure(makeSpec({ name: newName() })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransientBackendError);
      expect((err as Error).message).toMatch(/unreachable.*nothing\.sock/);
      await expect(down.state('sg-x')).rejects.toThrow(TransientBackendError);
      await down.close();
    });
  });
}
