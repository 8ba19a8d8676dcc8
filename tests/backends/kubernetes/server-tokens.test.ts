/**
 * A server pod's hub-facing tokens (JUPYTERHUB_API_TOKEN, JUPYTER_GATEWAY_AUTH_TOKEN) reach it from its
 * own Secret through `valueFrom.secretKeyRef`, never as plain env in the Pod spec: created with the pod,
 * owned by it, collected with it; the container really sees the values (the stand-in's kubelet
 * resolves the references as a kubelet does).
 */
import type { WorkloadSpec } from '../../../src/backends/types';
import { PermanentBackendError, TransientBackendError } from '../../../src/backends/types';
import { pollUntil } from '../../support/wait';
import { standIn } from './stand-in';

jest.setTimeout(60_000);

const PRINT_TOKENS = 'import os, time\nprint("hub=" + os.environ["JUPYTERHUB_API_TOKEN"], "gw=" + os.environ["JUPYTER_GATEWAY_AUTH_TOKEN"], flush=True)\nwhile True: time.sleep(60)';
let n = 0;

function serverSpec(tokens: { hub: string; gateway: string }): WorkloadSpec {
  return {
    name: `sg-h18w-srv-${process.pid}-${++n}`,
    kind: 'server',
    labels: { 'hub.jupyter.org/username': 'h18w-alice' },
    command: ['/usr/bin/python3', '-c', PRINT_TOKENS],
    env: { JUPYTERHUB_API_TOKEN: tokens.hub, JUPYTER_GATEWAY_AUTH_TOKEN: tokens.gateway, JUPYTERHUB_USER: 'h18w-alice' },
    image: 'quay.io/jupyter/base-notebook:2025-01-01',
    ports: { default: 8888 },
  };
}

let env: Awaited<ReturnType<typeof standIn>>;
afterEach(async () => env.cleanup());

test('the tokens come from the pod\'s own Secret: not in the Pod spec, seen by the container, collected with the pod', async () => {
  env = await standIn({ rewatchDelayMs: 200 });
  const { fake, make } = env;
  const backend = make();
  const spec = serverSpec({ hub: 'hub-token-h18w-0123456789', gateway: 'gw-token-h18w-0123456789' });
  await backend.ensure(spec);
  await pollUntil(() => backend.state(spec.name), (s) => s.phase === 'running');
  const lines = await pollUntil(() => backend.logs(spec.name, 5), (l) => l.some((x) => x.startsWith('hub=')));
  expect(lines).toContain('hub=hub-token-h18w-0123456789 gw=gw-token-h18w-0123456789');

  const received = fake.received.find((o) => o.kind === 'Pod' && o.metadata.name === spec.name)!;
  expect(JSON.stringify(received)).not.toMatch(/token-h18w/);
  const [secret, ...more] = fake.secretsOwnedBy(spec.name);
  expect(more).toEqual([]);
  const envList = received.spec.containers[0].env as { name: string; value?: string; valueFrom?: unknown }[];
  for (const key of ['JUPYTERHUB_API_TOKEN', 'JUPYTER_GATEWAY_AUTH_TOKEN']) {
    expect(envList.find((e) => e.name === key)).toEqual({ name: key, valueFrom: { secretKeyRef: { name: secret!.metadata.name, key } } });
  }
  expect(envList.find((e) => e.name === 'JUPYTERHUB_USER')).toEqual({ name: 'JUPYTERHUB_USER', value: 'h18w-alice' });
  expect(secret!.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Pod', name: spec.name, uid: fake.pods.get(spec.name)!.metadata.uid })]);

  await backend.stop(spec.name, { graceSeconds: 1 });
  expect(fake.secretsOwnedBy(spec.name)).toEqual([]);
});

test('a retried launch adopts the pod and keeps its Secret; other tokens are a different spec', async () => {
  env = await standIn({ rewatchDelayMs: 200 });
  const { fake, make } = env;
  const first = make();
  const spec = serverSpec({ hub: 'hub-a-h18w-0123456789', gateway: 'gw-a-h18w-0123456789' });
  await first.ensure(spec);
  const second = make(); // another replica retrying the same launch
  await second.ensure(spec);
  expect(fake.secretsOwnedBy(spec.name)).toHaveLength(1);
  const other = { ...spec, env: { ...spec.env, JUPYTER_GATEWAY_AUTH_TOKEN: 'gw-b-h18w-0123456789' } };
  await expect(second.ensure(other)).rejects.toBeInstanceOf(PermanentBackendError);
});

test('a Secret that cannot be created fails the launch and takes the pod with it', async () => {
  env = await standIn({ rewatchDelayMs: 200 });
  const { fake, make } = env;
  const backend = make();
  const spec = serverSpec({ hub: 'hub-c-h18w-0123456789', gateway: 'gw-c-h18w-0123456789' });
  fake.behaviour.failNext('create', 'secrets', 503);
  await expect(backend.ensure(spec)).rejects.toBeInstanceOf(TransientBackendError);
  expect(fake.pods.has(spec.name)).toBe(false);
  expect(fake.secretsOwnedBy(spec.name)).toEqual([]);
});
