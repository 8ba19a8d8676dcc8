/**
 * What the real engine here cannot show: pulling (no registry is reachable) and GPUs (no devices).
 * A small Docker Engine API stand-in on a unix socket answers the few paths `ensure` uses, streams a
 * pull the way Docker does (JSON objects split across chunks), and records the create body.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createDockerBackend } from '../../src/backends/docker';
import { PermanentBackendError, type WorkloadEvent } from '../../src/backends/types';
import { testLogger as silent } from '../support/logger';


interface Stub {
  socketPath: string;
  created: Record<string, unknown>[];
  pulls: string[];
  close(): Promise<void>;
}

/** Engine stand-in. `pullChunks` is what POST /images/create streams (null: the image is present). */
async function startStub(pullChunks: string[] | null, events: object[] = [], startFailures: string[] = []): Promise<Stub> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-engine-stub-'));
  const socketPath = path.join(dir, 'docker.sock');
  const created: Record<string, unknown>[] = [];
  const pulls: string[] = [];
  let imagePresent = pullChunks === null;
  let container: { name: string; body: Record<string, unknown>; running: boolean } | undefined;
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    const p = url.pathname.replace(/^\/v[\d.]+/, '');
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      if (req.method === 'GET' && /^\/images\/.+\/json$/.test(p)) {
        return imagePresent ? json(res, 200, { Id: 'sha256:stub' }) : json(res, 404, { message: 'No such image' });
      }
      if (req.method === 'POST' && p === '/images/create') {
        pulls.push(`${url.searchParams.get('fromImage')}:${url.searchParams.get('tag') ?? ''}`);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        const chunks = [...(pullChunks ?? [])];
        const next = () => {
          const chunk = chunks.shift();
          if (chunk === undefined) {
            if (!(pullChunks ?? []).some((c) => c.includes('error'))) imagePresent = true;
            res.end();
            return;
          }
          res.write(chunk);
          setTimeout(next, 5);
        };
        return next();
      }
      if (req.method === 'GET' && p === '/events') {
        // The engine's stream: the given events at once, then held open like a real one.
        res.writeHead(200, { 'Content-Type': 'application/json' });
        for (const e of events) res.write(`${JSON.stringify(e)}\n`);
        return;
      }
      if (req.method === 'GET' && /^\/containers\/[^/]+\/json$/.test(p)) {
        const name = decodeURIComponent(p.split('/')[2]!);
        if (!container || (name !== container.name && name !== 'stub-id')) return json(res, 404, { message: 'no such container' });
        const body = container.body as { Labels?: Record<string, string>; Image?: string; HostConfig?: unknown };
        return json(res, 200, {
          Id: 'stub-id',
          Name: `/${container.name}`,
          Created: new Date().toISOString(),
          Config: { Labels: body.Labels, Image: body.Image },
          State: { Status: container.running ? 'running' : 'created', ExitCode: 0 },
          HostConfig: body.HostConfig,
          NetworkSettings: { Ports: {} },
        });
      }
      if (req.method === 'POST' && p === '/containers/create') {
        const body = JSON.parse(raw) as Record<string, unknown>;
        created.push(body);
        container = { name: url.searchParams.get('name') ?? '', body, running: false };
        return json(res, 201, { Id: 'stub-id', Warnings: [] });
      }
      if (req.method === 'DELETE' && p === '/containers/stub-id' && container) {
        container = undefined;
        res.writeHead(204);
        return res.end();
      }
      if (req.method === 'POST' && p === '/containers/stub-id/start' && container && startFailures.length) {
        return json(res, 500, { message: startFailures.shift() });
      }
      if (req.method === 'POST' && p === '/containers/stub-id/start' && container) {
        container.running = true;
        res.writeHead(204);
        return res.end();
      }
      json(res, 404, { message: `stub: ${req.method} ${p} not implemented` });
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    created,
    pulls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        fs.rmSync(dir, { recursive: true, force: true });
      }),
  };
}

const spec = (extra: object = {}) => ({
  name: 'sg-stub-1',
  kind: 'server' as const,
  labels: {},
  image: 'registry.example/team/notebook:1.2',
  command: ['jupyterhub-singleuser'],
  env: {},
  ...extra,
});

test('a missing image is pulled, each progress step reported, then the container starts', async () => {
  // Docker streams one JSON object per line; a chunk may end in the middle of one.
  const lines = [
    '{"status":"Pulling from team/notebook","id":"1.2"}\r\n',
    '{"status":"Downloading","progressDetail":{"current":1,"total":10},"progress":"[=>   ] 1MB/10MB","id":"a1b2"}\r\n{"status":"Downl',
    'oad complete","id":"a1b2"}\r\n',
    '{"status":"Status: Downloaded newer image for registry.example/team/notebook:1.2"}\r\n',
  ];
  const stub = await startStub(lines);
  const backend = createDockerBackend({ connection: { socketPath: stub.socketPath }, runAsUser: 1000, logger: silent });
  try {
    const events: WorkloadEvent[] = [];
    const state = await backend.ensure(spec(), (e) => events.push(e));
    expect(state.phase).toBe('running');
    expect(stub.pulls).toEqual(['registry.example/team/notebook:1.2']);
    expect(events.map((e) => e.message)).toEqual([
      'pulling image registry.example/team/notebook:1.2',
      'pull registry.example/team/notebook:1.2: 1.2 Pulling from team/notebook',
      'pull registry.example/team/notebook:1.2: a1b2 Downloading [=>   ] 1MB/10MB',
      'pull registry.example/team/notebook:1.2: a1b2 Download complete',
      'pull registry.example/team/notebook:1.2: Status: Downloaded newer image for registry.example/team/notebook:1.2',
      'created container stub-id',
      'started container stub-id',
    ]);
  } finally {
    await backend.close();
    await stub.close();
  }
});

test("a pull the registry refuses is a PermanentBackendError with the registry's reason; nothing is created", async () => {
  const stub = await startStub(['{"status":"Pulling from team/notebook","id":"1.2"}\n', '{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}\n']);
  const backend = createDockerBackend({ connection: { socketPath: stub.socketPath }, runAsUser: 1000, logger: silent });
  try {
    const err = await backend.ensure(spec()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentBackendError);
    expect((err as Error).message).toBe('image registry.example/team/notebook:1.2 is not present and cannot be pulled: manifest unknown');
    expect(stub.created).toEqual([]);
  } finally {
    await backend.close();
    await stub.close();
  }
});

test('pull: false refuses a missing image without asking a registry', async () => {
  const stub = await startStub([]);
  const backend = createDockerBackend({ connection: { socketPath: stub.socketPath }, runAsUser: 1000, pull: false, logger: silent });
  try {
    await expect(backend.ensure(spec())).rejects.toThrow('image registry.example/team/notebook:1.2 is not present and pulling is disabled');
    expect(stub.pulls).toEqual([]);
  } finally {
    await backend.close();
    await stub.close();
  }
});

test('GPUs become a DeviceRequest; CPU and memory requests and limits become NanoCpus, CpuShares, Memory, MemoryReservation', async () => {
  const stub = await startStub(null);
  const backend = createDockerBackend({ connection: { socketPath: stub.socketPath }, runAsUser: 1000, logger: silent });
  try {
    await backend.ensure(spec({ resources: { gpuLimit: 2, cpuRequest: 1, cpuLimit: 2, memoryRequestMiB: 1024, memoryLimitMiB: 4096 } }));
    const host = (stub.created[0] as { HostConfig: Record<string, unknown> }).HostConfig;
    expect(host).toMatchObject({
      DeviceRequests: [{ Driver: 'nvidia', Count: 2, Capabilities: [['gpu']] }],
      NanoCpus: 2_000_000_000,
      CpuShares: 1024,
      Memory: 4096 * 1048576,
      MemorySwap: 4096 * 1048576,
      MemoryReservation: 1024 * 1048576,
    });
  } finally {
    await backend.close();
    await stub.close();
  }
});

test("events about an earlier container of the same name are not reported as the current one's exit", async () => {
  const time = Math.floor(Date.now() / 1000);
  const attrs = (exitCode: string) => ({ name: 'sg-stub-1', 'spawngate.name': 'sg-stub-1', 'spawngate.managed': 'true', exitCode });
  // What a restart looks like when the stream lags: the old container's die and remove arrive after
  // its replacement (stub-id) is running; then the replacement itself exits.
  const stub = await startStub(null, [
    { Type: 'container', Action: 'die', Actor: { ID: 'old-id', Attributes: attrs('137') }, time },
    { Type: 'container', Action: 'remove', Actor: { ID: 'old-id', Attributes: attrs('137') }, time },
    { Type: 'container', Action: 'die', Actor: { ID: 'stub-id', Attributes: attrs('3') }, time },
  ]);
  const backend = createDockerBackend({ connection: { socketPath: stub.socketPath }, runAsUser: 1000, logger: silent });
  try {
    await backend.ensure(spec());
    const seen: WorkloadEvent[] = [];
    const unwatch = backend.watch((e) => seen.push(e));
    const end = Date.now() + 5000;
    while (seen.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    unwatch();
    expect(seen).toEqual([{ name: 'sg-stub-1', type: 'state', state: expect.objectContaining({ phase: 'exited', exitCode: 3 }) }]);
  } finally {
    await backend.close();
    await stub.close();
  }
});

test('a published host port taken between create and start: the container is created again and starts', async () => {
  // podman chooses host ports at create and binds them at start; seen under 50 concurrent launches.
  const stub = await startStub(null, [], ['cannot listen on the TCP port: listen tcp4 127.0.0.1:33783: bind: address already in use']);
  const backend = createDockerBackend({ connection: { socketPath: stub.socketPath }, runAsUser: 1000, logger: silent });
  try {
    const events: WorkloadEvent[] = [];
    const state = await backend.ensure(spec({ ports: { default: 8888 } }), (e) => events.push(e));
    expect(state.phase).toBe('running');
    expect(stub.created).toHaveLength(2);
    expect(events.map((e) => e.message)).toContain('a published host port was taken; recreating the container');
  } finally {
    await backend.close();
    await stub.close();
  }
});

test('a start the engine refuses for good is not retried', async () => {
  const stub = await startStub(null, [], ['runc create failed: exec: "jupyterhub-singleuser": executable file not found in $PATH']);
  const backend = createDockerBackend({ connection: { socketPath: stub.socketPath }, runAsUser: 1000, logger: silent });
  try {
    await expect(backend.ensure(spec())).rejects.toThrow(/cannot start: .*executable file not found/);
    expect(stub.created).toHaveLength(1);
  } finally {
    await backend.close();
    await stub.close();
  }
});
