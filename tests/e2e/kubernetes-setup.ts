/**
 * Shared set-up of the kubernetes end-to-end tests: the API stand-in (running pods as local processes),
 * a home tree on the "EFS" claim with alice's conda environment, Postgres with her experiment, and a
 * spawngate process with SPAWNGATE_BACKEND=kubernetes and a kubeconfig pointing at the stand-in.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { migrate } from '../../src/db';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { FakeApiServer, readDocumentedRole, type FakeApiServerOptions } from '../backends/kubernetes/fake-apiserver';
import { ROOT, startSpawngate, tmpDir, type Spawngate } from './harness';

export const KERNEL_IMAGE = 'registry.example/spawngate-kernel:test';
export const SERVER_IMAGE = 'registry.example/spawngate-singleuser:test';
export const MISSING_IMAGE = 'registry.example/does-not-exist:1';
export const EXPERIMENT_NS = 'sg-exp-climate';
/** An experiment whose kernels get a GPU, which the stand-in's nodes do not have. */
export const GPU_EXPERIMENT_NS = 'sg-exp-vision';
/** The uid alice's home belongs to (and her pods run as, when the tests run as root). */
export const ALICE_UID = 1000;

export interface KubeWorld {
  fake: FakeApiServer;
  pg: TestPostgres;
  homes: string;
  envPrefix: string;
  sharedKernels: string;
  configFile: string;
  dir: string;
  start(extraEnv?: NodeJS.ProcessEnv): Promise<Spawngate>;
  close(): Promise<void>;
}

export async function createKubeWorld(opts: { fake?: Partial<FakeApiServerOptions>; config?: Record<string, unknown> } = {}): Promise<KubeWorld> {
  const role = readDocumentedRole();
  const dir = tmpDir('sg-k8s-e2e');
  const homes = path.join(dir, 'homes');
  const alice = path.join(homes, 'alice');
  const envPrefix = path.join(alice, '.conda', 'envs', 'analysis');
  const kdir = path.join(envPrefix, 'share', 'jupyter', 'kernels', 'python3');
  fs.mkdirSync(path.join(envPrefix, 'bin'), { recursive: true });
  fs.symlinkSync('/usr/bin/python3', path.join(envPrefix, 'bin', 'python'));
  fs.mkdirSync(kdir, { recursive: true });
  fs.writeFileSync(path.join(kdir, 'kernel.json'), JSON.stringify({ argv: [path.join(envPrefix, 'bin', 'python'), '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'Analysis', language: 'python' }));
  // A second environment, registered to the GPU experiment.
  const gpuKernels = path.join(alice, '.conda', 'envs', 'deep', 'share', 'jupyter', 'kernels', 'python3');
  fs.mkdirSync(gpuKernels, { recursive: true });
  fs.writeFileSync(path.join(gpuKernels, 'kernel.json'), JSON.stringify({ argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'Deep', language: 'python' }));
  // An admin kernelspec whose image cannot be pulled (Enterprise Gateway's image_name convention).
  const sharedKernels = path.join(dir, 'shared-kernels');
  fs.mkdirSync(path.join(sharedKernels, 'broken-image'), { recursive: true });
  fs.writeFileSync(
    path.join(sharedKernels, 'broken-image', 'kernel.json'),
    JSON.stringify({ argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'Broken image', language: 'python', metadata: { process_proxy: { config: { image_name: MISSING_IMAGE } }, spawngate: { environment: 'analysis' } } }),
  );
  // The home tree as EFS shows it: homes traversable, alice's home hers (pods run as its owner).
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(homes, 0o755);
  if (process.getuid?.() === 0) {
    for (const p of [alice, path.join(alice, '.conda'), path.join(alice, '.conda', 'envs'), envPrefix]) fs.chownSync(p, ALICE_UID, ALICE_UID);
  }

  // The kernel image's site-packages: spawngate.launcher, copied where the pod's uid can read it
  // whatever the permissions of the checkout's parent directories.
  const imageSite = path.join(dir, 'kernel-image-site');
  fs.cpSync(path.join(ROOT, 'python-shim', 'spawngate'), path.join(imageSite, 'spawngate'), { recursive: true, filter: (src) => !src.includes('__pycache__') });
  fs.chmodSync(imageSite, 0o755);

  const fake = await new FakeApiServer({
    namespace: role.namespace,
    extraNamespaces: [EXPERIMENT_NS, GPU_EXPERIMENT_NS],
    rules: role.rules,
    runCommands: true,
    persistentVolumes: { 'efs-homes': homes },
    images: {
      [KERNEL_IMAGE]: { env: { PATH: '/usr/bin:/bin', PYTHONPATH: imageSite, LANG: 'C.UTF-8' } },
      [SERVER_IMAGE]: { env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } },
    },
    ...opts.fake,
  }).start();
  const kubeconfig = fake.writeKubeconfig(dir);
  const configFile = path.join(dir, 'spawngate.yaml');
  fs.writeFileSync(
    configFile,
    YAML.stringify({
      kernels: { image: KERNEL_IMAGE, allowed_images: [MISSING_IMAGE] },
      kubernetes: { kubeconfig, experiment_namespaces: { template: 'sg-exp-{experiment}' }, home_volume: { claim_name: 'efs-homes' } },
      ...opts.config,
    }),
  );

  const pg = await createTestPostgres();
  await migrate(pg.db);
  await pg.db.query(`
    INSERT INTO users (username) VALUES ('alice');
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit) VALUES ('climate', 1, 4, 1024, 8192, 0);
    INSERT INTO environments (name, experiment_id) SELECT 'analysis', id FROM experiments WHERE name = 'climate';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'climate' AND u.username = 'alice';
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit) VALUES ('vision', 1, 2, 1024, 4096, 1);
    INSERT INTO environments (name, experiment_id) SELECT 'deep', id FROM experiments WHERE name = 'vision';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'vision' AND u.username = 'alice';
  `);
  const dataDir = path.join(dir, 'data');

  return {
    fake,
    pg,
    homes,
    envPrefix,
    sharedKernels,
    configFile,
    dir,
    async start(extraEnv = {}) {
      const sg = await startSpawngate({
        dataDir,
        env: {
          SPAWNGATE_DATABASE_URL: pg.url,
          SPAWNGATE_HOME_ROOT: homes,
          SPAWNGATE_SHARED_KERNELS: sharedKernels,
          SPAWNGATE_BACKEND: 'kubernetes',
          SPAWNGATE_KUBERNETES_NAMESPACE: role.namespace,
          SPAWNGATE_CONFIG: configFile,
          SPAWNGATE_SECRET_KEY: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
          ...extraEnv,
        },
      });
      return sg;
    },
    async close() {
      await fake.close();
      await pg.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
