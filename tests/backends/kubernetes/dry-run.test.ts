/**
 * `spawngate dry-run`: the manifests printed for a user's server and kernel are the ones the kubernetes
 * backend would create — schema-valid (kubernetes-models), in the right namespace, with the profile's
 * pod options, the home volume and the experiment's quota — and nothing contacts an API (no kubeconfig
 * exists here at all).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { Pod, Secret } from 'kubernetes-models/v1';
import { renderDryRun } from '../../../src/cli/dry-run';
import { loadConfig } from '../../../src/config';
import { migrate, type Db } from '../../../src/db';
import { createTestPglite } from '../../db/helpers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-dry-run-'));
const homes = path.join(dir, 'homes');
const kdir = path.join(homes, 'alice', '.conda', 'envs', 'tf', 'share', 'jupyter', 'kernels', 'python3');
fs.mkdirSync(kdir, { recursive: true });
fs.writeFileSync(path.join(kdir, 'kernel.json'), JSON.stringify({ argv: ['python', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'TF', language: 'python' }));
const configFile = path.join(dir, 'spawngate.yaml');
fs.writeFileSync(
  configFile,
  YAML.stringify({
    profiles: [
      { slug: 'standard', display_name: 'Standard', image: 'registry.example/notebook:1', resources: { cpu_limit: 2, memory_limit_mib: 4096 } },
      { slug: 'gpu', display_name: 'GPU', image: 'registry.example/notebook-gpu:1', resources: { gpu_limit: 1 }, kubernetes: { nodeSelector: { pool: 'gpu' }, runAsUser: 4242 } },
    ],
    kernels: { image: 'registry.example/kernel:1' },
    kubernetes: { namespace: 'jupyter', experiment_namespaces: { template: 'exp-{experiment}' }, home_volume: { claim_name: 'efs-homes' }, kubeconfig: path.join(dir, 'no-such-kubeconfig') },
  }),
);
const config = loadConfig({ SPAWNGATE_CONFIG: configFile, SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_DATA_DIR: path.join(dir, 'data') });

let db: Db;
beforeAll(async () => {
  db = await createTestPglite();
  await migrate(db);
  await db.query(`
    INSERT INTO users (username) VALUES ('alice');
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit) VALUES ('Genomics', 0.5, 2, 512, 4096, 1);
    INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'Genomics';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'Genomics' AND u.username = 'alice';
  `);
});
afterAll(async () => {
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const docs = (yaml: string): Obj[] => YAML.parseAllDocuments(yaml).map((d) => d.toJS() as Obj);

test('server of the default profile: a valid Pod in the default namespace with the home volume; its tokens in its Secret', async () => {
  const [pod, secret, ...rest] = docs(await renderDryRun(config, { user: 'alice' }));
  expect(rest).toEqual([]);
  new Pod(pod as ConstructorParameters<typeof Pod>[0]).validate();
  expect(pod!.metadata.namespace).toBe('jupyter');
  expect(pod!.spec.containers[0].image).toBe('registry.example/notebook:1');
  expect(pod!.spec.containers[0].resources).toEqual({ limits: { cpu: '2000m', memory: '4096Mi' } });
  expect(pod!.spec.containers[0].volumeMounts).toEqual([{ name: 'spawngate-home', mountPath: path.join(homes, 'alice'), subPath: 'alice' }]);
  expect(pod!.spec.securityContext.runAsUser).toBeGreaterThan(0);
  // The hub's and the gateway's tokens never appear in the Pod: env names them in the pod's Secret.
  expect(JSON.stringify(pod)).not.toContain('<minted at start>');
  expect(JSON.stringify(pod)).not.toContain('<from the hub at spawn>');
  const env = pod!.spec.containers[0].env as Obj[];
  for (const name of ['JUPYTERHUB_API_TOKEN', 'JUPYTER_GATEWAY_AUTH_TOKEN']) {
    expect(env.find((e) => e.name === name)).toEqual({ name, valueFrom: { secretKeyRef: { name: secret!.metadata.name, key: name } } });
  }
  new Secret(secret as ConstructorParameters<typeof Secret>[0]).validate();
  expect(secret!.stringData).toEqual({ JUPYTERHUB_API_TOKEN: '<from the hub at spawn>', JUPYTER_GATEWAY_AUTH_TOKEN: '<minted at start>' });
  expect(secret!.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Pod', name: pod!.metadata.name })]);
});

test('a profile and a kernel: pod options from the profile, the kernel in its experiment namespace with the quota', async () => {
  const [server, serverSecret, kernel, secret] = docs(await renderDryRun(config, { user: 'alice', profile: 'gpu', kernel: 'conda-env-tf-python3' }, db));
  expect(serverSecret!.kind).toBe('Secret');
  expect(server!.spec.nodeSelector).toEqual({ pool: 'gpu' });
  expect(server!.spec.securityContext.runAsUser).toBe(4242);
  expect(server!.spec.containers[0].resources.limits['nvidia.com/gpu']).toBe('1');
  new Pod(kernel as ConstructorParameters<typeof Pod>[0]).validate();
  expect(kernel!.metadata.namespace).toMatch(/^exp-genomics-[0-9a-f]{6}$/);
  expect(kernel!.spec.restartPolicy).toBe('Never');
  expect(kernel!.spec.containers[0].resources).toEqual({ requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '2000m', memory: '4096Mi', 'nvidia.com/gpu': '1' } });
  expect(kernel!.spec.containers[0].env).toEqual(expect.arrayContaining([{ name: 'KERNEL_USERNAME', value: 'alice' }, { name: 'SPAWNGATE_CONNECTION_SOURCE', value: '/var/run/spawngate/connection.json' }]));
  expect(JSON.stringify(kernel)).not.toContain('SPAWNGATE_CONNECTION_INFO');
  new Secret(secret as ConstructorParameters<typeof Secret>[0]).validate();
  expect(JSON.parse(secret!.stringData['connection.json'])).toMatchObject({ key: '<generated at launch>', shell_port: 52317 });
});

test('a server the backend would refuse is reported as such, the kernel still printed', async () => {
  const bareFile = path.join(dir, 'bare.yaml');
  fs.writeFileSync(bareFile, YAML.stringify({ kernels: { image: 'registry.example/kernel:1' }, kubernetes: { namespace: 'jupyter' } }));
  const bare = loadConfig({ SPAWNGATE_CONFIG: bareFile, SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_DATA_DIR: path.join(dir, 'data') });
  const out = await renderDryRun(bare, { user: 'alice', kernel: 'conda-env-tf-python3' }, db);
  expect(out).toMatch(/# server of 'alice' \(profile 'default'\): would be refused: .*has no image/);
  const pods = docs(out).filter((d) => d?.kind === 'Pod');
  expect(pods.map((p) => [p.metadata.namespace, p.metadata.labels.component])).toEqual([['jupyter', 'kernel']]);
});

test('an unknown profile or kernel is refused with a message naming it', async () => {
  await expect(renderDryRun(config, { user: 'alice', profile: 'nope' })).rejects.toThrow(/unknown profile 'nope'/);
  await expect(renderDryRun(config, { user: 'alice', kernel: 'nope' }, db)).rejects.toThrow(/nope/);
});

test("a profile's kubernetes block is checked when the configuration loads", () => {
  const badFile = path.join(dir, 'bad.yaml');
  fs.writeFileSync(badFile, YAML.stringify({ profiles: [{ slug: 'x', display_name: 'X', kubernetes: { privileged: true, runAsUser: 0 } }] }));
  expect(() => loadConfig({ SPAWNGATE_CONFIG: badFile })).toThrow(/profiles\.0\.kubernetes.*(privileged|root)/);
});
