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
import { ENGINE_START_TIMEOUT_MS, createTestPglite } from '../../db/helpers';
import { podCauses, restrictedViolations } from './apiserver-rules';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-dry-run-'));
const homes = path.join(dir, 'homes');
const kdir = path.join(homes, 'alice', '.conda', 'envs', 'tf', 'share', 'jupyter', 'kernels', 'python3');
fs.mkdirSync(kdir, { recursive: true });
fs.writeFileSync(path.join(kdir, 'kernel.json'), JSON.stringify({ argv: ['python', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'TF', language: 'python' }));
// Pods run as the home's owner and a root-owned home is refused: as root, give alice's home to a uid.
const ALICE_UID = process.getuid?.() === 0 ? 4100 : process.getuid!();
if (process.getuid?.() === 0) fs.chownSync(path.join(homes, 'alice'), ALICE_UID, ALICE_UID);
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
}, ENGINE_START_TIMEOUT_MS);
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
  // Limits only in the profile: requests default to kubernetes.default_request_fraction (0.5) of them.
  expect(pod!.spec.containers[0].resources).toEqual({ requests: { cpu: '1000m', memory: '2048Mi' }, limits: { cpu: '2000m', memory: '4096Mi' } });
  expect(pod!.spec.securityContext).toMatchObject({ runAsUser: ALICE_UID, runAsGroup: ALICE_UID });
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
  expect(kernel!.spec.containers[0].resources).toEqual({
    requests: { cpu: '500m', memory: '512Mi', 'nvidia.com/gpu': '1' },
    limits: { cpu: '2000m', memory: '4096Mi', 'nvidia.com/gpu': '1' },
  });
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

// Users whose names are awkward for Kubernetes: non-ASCII, upper case, @ and +, a leading "_", a long
// one (spaces and apostrophes are refused by validateUsername today). Their pods must pass what a real API server checks, on a cluster before
// 1.32 (strict env names) and under Pod Security "restricted".
const AWKWARD = ['José', 'Ünal.Öz', 'x@y.example.org', 'a+b', '_under', `long-${'n'.repeat(70)}`];

test.each(AWKWARD)('dry-run for %j: the pods pass the API server\'s rules and Pod Security "restricted"', async (user) => {
  fs.mkdirSync(path.join(homes, user), { recursive: true });
  if (process.getuid?.() === 0) fs.chownSync(path.join(homes, user), 4200, 4200);
  const out = await renderDryRun(config, { user, profile: 'standard' });
  expect(out).not.toMatch(/would be refused/);
  const [pod] = docs(out);
  new Pod(pod as ConstructorParameters<typeof Pod>[0]).validate();
  expect(podCauses(pod!, { minor: 31 })).toEqual([]);
  expect(restrictedViolations(pod!)).toEqual([]);
  expect(pod!.spec.containers[0].volumeMounts).toEqual([{ name: 'spawngate-home', mountPath: path.join(homes, user), subPath: user }]);
  expect(pod!.spec.containers[0].env).toEqual(expect.arrayContaining([{ name: 'KERNEL_USERNAME', value: user }]));
});

test('dry-run refuses a user whose home is missing or belongs to root, naming the home', async () => {
  await expect(renderDryRun(config, { user: 'nohome', profile: 'standard' })).resolves.toMatch(/would be refused: home directory .*nohome of user nohome does not exist/);
  if (process.getuid?.() === 0) {
    fs.mkdirSync(path.join(homes, 'rooty'));
    await expect(renderDryRun(config, { user: 'rooty', profile: 'standard' })).resolves.toMatch(/would be refused: refusing to start a pod for rooty: their home .*rooty belongs to uid 0/);
  }
});

test("kernel pods take placement from kernels.kubernetes, an experiment's block replacing its keys", async () => {
  const file = path.join(dir, 'placed.yaml');
  const tolerations = [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }];
  fs.writeFileSync(
    file,
    YAML.stringify({
      kernels: {
        image: 'registry.example/kernel:1',
        kubernetes: { nodeSelector: { pool: 'cpu' }, imagePullSecrets: ['ecr-creds'], priorityClassName: 'notebooks' },
        experiment_kubernetes: { Genomics: { nodeSelector: { pool: 'gpu' }, tolerations } },
      },
      kubernetes: { namespace: 'jupyter', home_volume: { claim_name: 'efs-homes' } },
    }),
  );
  const placed = loadConfig({ SPAWNGATE_CONFIG: file, SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_DATA_DIR: path.join(dir, 'data') });
  const kernel = docs(await renderDryRun(placed, { user: 'alice', profile: 'default', kernel: 'conda-env-tf-python3' }, db)).find((d) => d?.metadata?.labels?.component === 'kernel')!;
  expect(kernel.spec).toMatchObject({ nodeSelector: { pool: 'gpu' }, tolerations, imagePullSecrets: [{ name: 'ecr-creds' }], priorityClassName: 'notebooks' });
  expect(podCauses(kernel, { minor: 31 })).toEqual([]);
  expect(restrictedViolations(kernel)).toEqual([]);

  // Checked when the configuration loads, like a profile's block; identity fields are not kernels' to set.
  fs.writeFileSync(file, YAML.stringify({ kernels: { kubernetes: { tolerations: [{ key: 'gpu', operator: 'Exists', value: 'x' }] } } }));
  expect(() => loadConfig({ SPAWNGATE_CONFIG: file })).toThrow(/kernels\.kubernetes: tolerations\[0\]\.value: must be empty when operator is Exists/);
  fs.writeFileSync(file, YAML.stringify({ kernels: { experiment_kubernetes: { Genomics: { runAsUser: 5 } } } }));
  expect(() => loadConfig({ SPAWNGATE_CONFIG: file })).toThrow(/kernels\.experiment_kubernetes\.Genomics.*runAsUser/);
});
