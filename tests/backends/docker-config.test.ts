/** The YAML `docker:` section: validated at start-up, and turned into the docker backend's options. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dockerOptionsFromConfig } from '../../src/backends/docker';
import { buildContainer, labelKeys } from '../../src/backends/docker/container-spec';
import { ConfigError, loadConfig } from '../../src/config';
import { logger } from '../../src/logging';
import { createBackend } from '../../src/compose/backend-factory';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-docker-config-'));
const withYaml = (yaml: string, env: NodeJS.ProcessEnv = {}) => {
  const file = path.join(dir, `c${Math.random().toString(16).slice(2)}.yaml`);
  fs.writeFileSync(file, yaml);
  return loadConfig({ SPAWNGATE_BACKEND: 'docker', SPAWNGATE_CONFIG: file, SPAWNGATE_HOME_ROOT: '/srv/homes', ...env });
};

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the docker section becomes the backend options; SPAWNGATE_BACKEND=docker builds the docker backend', async () => {
  const config = withYaml(
    ['docker:', '  network: jupyter', '  extra_binds: ["/opt/sw:/opt/sw:ro"]', '  pull: false', '  run_as_group: 100', '  label_prefix: lab1'].join('\n'),
  );
  expect(dockerOptionsFromConfig(config, logger)).toMatchObject({
    network: 'jupyter',
    networkPerUser: true,
    publishHost: '127.0.0.1',
    homeRoot: '/srv/homes',
    extraBinds: ['/opt/sw:/opt/sw:ro'],
    pull: false,
    runAsUser: undefined,
    runAsGroup: 100,
    allowRoot: false,
    labelPrefix: 'lab1',
    init: true,
  });
  expect(dockerOptionsFromConfig(withYaml('docker:\n  network_per_user: false\n'), logger).networkPerUser).toBe(false);
  const backend = createBackend(config, logger);
  expect(backend.name).toBe('docker');
  await backend.close();
});

test.each([
  ['extra_binds: ["relative:/x"]', /docker\.extra_binds/],
  ['run_as_user: -1', /docker\.run_as_user/],
  ['label_prefix: "Bad Prefix"', /docker\.label_prefix/],
  ['sockett: /var/run/docker.sock', /sockett/],
])('an invalid docker setting (%s) stops start-up naming it', (line, expected) => {
  const attempt = () => withYaml(`docker:\n  ${line}\n`);
  expect(attempt).toThrow(ConfigError);
  expect(attempt).toThrow(expected);
});

test("the home bind mount uses the user's real name (KERNEL_USERNAME), not the sanitized label", async () => {
  const homes = fs.mkdtempSync(path.join(dir, 'homes-'));
  const name = 'Alice.Smith@lab';
  fs.mkdirSync(path.join(homes, name));
  fs.chownSync(path.join(homes, name), 1234, 1234);
  const built = await buildContainer(
    {
      name: 'sg-krn-home-check',
      kind: 'kernel',
      image: 'localhost/x:1',
      command: ['true'],
      labels: { 'spawngate/user': name },
      env: { KERNEL_USERNAME: name },
    },
    { homeRoot: homes },
    labelKeys('spawngate'),
  );
  expect(built.create.HostConfig?.Mounts).toContainEqual({ Type: 'bind', Source: path.join(homes, name), Target: path.join(homes, name), ReadOnly: false });
  expect(built.create.HostConfig?.Binds).toBeUndefined();
  expect(built.create.User).toBe('1234:1234');
});
