/**
 * What scripts/build-images.sh builds is what the chart and the examples deploy: names, tags, pull
 * policy. And the script refuses bad options with a clear message before building anything.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { REPO } from '../support/podman';

const script = readFileSync(path.join(REPO, 'scripts/build-images.sh'), 'utf8');
const setting = (name: string): string => {
  const m = new RegExp(`^${name}=(\\S+)$`, 'm').exec(script);
  if (!m) throw new Error(`scripts/build-images.sh sets no ${name}`);
  return m[1]!;
};
const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string; license: string };
const chart = YAML.parse(readFileSync(path.join(REPO, 'helm/spawngate/Chart.yaml'), 'utf8')) as { appVersion: string };
const values = YAML.parse(readFileSync(path.join(REPO, 'helm/spawngate/values.yaml'), 'utf8'));
const example = (f: string) => YAML.parse(readFileSync(path.join(REPO, 'helm/spawngate/examples', f), 'utf8'));

test("the chart's default image is the one the script builds by default: name, tag (appVersion = package version), pull policy", () => {
  expect(values.image.repository).toBe(`${setting('REGISTRY')}/spawngate`);
  expect(values.image.tag).toBe(''); // → appVersion
  expect(chart.appVersion).toBe(pkg.version);
  expect(setting('TAG')).toBe('"$VERSION"'); // the script's default tag is package.json's version
  // versioned tags are immutable: pulled once per node
  expect(values.image.pullPolicy).toBe('IfNotPresent');
});

test('the examples name the images the script builds (spawngate, spawngate-kernel, spawngate-hub:<z2jh tag>-spawngate<version>)', () => {
  const eks = example('eks-values.yaml');
  expect(eks.image.repository).toMatch(/\/spawngate$/);
  expect(eks.image.tag).toBe(pkg.version);
  expect(eks.config.kernels.image).toMatch(/\/spawngate-kernel:[\w.-]+$/);
  const hubBase = setting('HUB_BASE');
  const dockerfileHub = /^ARG HUB_IMAGE=(\S+)$/m.exec(readFileSync(path.join(REPO, 'docker/hub/Dockerfile'), 'utf8'))![1];
  expect(hubBase).toBe(dockerfileHub);
  const z2jh = example('z2jh-values.yaml');
  expect(z2jh.hub.image.name).toMatch(/\/spawngate-hub$/);
  expect(z2jh.hub.image.tag).toBe(`${hubBase.split(':').pop()}-spawngate${pkg.version}`);
});

test('docs/deploy-eks.md names the build and push command', () => {
  const doc = readFileSync(path.join(REPO, 'docs/deploy-eks.md'), 'utf8');
  expect(doc).toMatch(/scripts\/build-images\.sh [^\n]*--registry [^\n]*--push/);
});

describe('bad options are refused with a clear message (exit 2), nothing built', () => {
  const run = (...args: string[]) => spawnSync('bash', [path.join(REPO, 'scripts/build-images.sh'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  test.each([
    [['--tag', 'x;rm -rf /'], /--tag: not an image tag/],
    [['--registry', 'Example.com/UPPER'], /--registry: not an image name prefix/],
    [['--registry', 'reg/x --push'], /--registry: not an image name prefix/],
    [['--hub-tag', '../../x'], /--hub-tag: not an image tag/],
    [['--only', 'spawngate,evil'], /--only: unknown image evil/],
    [['--engine', 'sh'], /--engine: docker or podman/],
    [['--frobnicate'], /unknown option: --frobnicate/],
  ])('%j', (args, message) => {
    const r = run(...(args as string[]));
    expect(r.stderr).toMatch(message);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
  });

  test('--help prints the usage', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--local-base/);
    expect(r.stdout).toMatch(/--push/);
  });
});
