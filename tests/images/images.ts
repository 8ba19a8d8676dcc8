/**
 * The three images built the way a user builds them (scripts/build-images.sh) on the machine's podman,
 * from locally made bases (--local-base: debootstrap + Node.js + Debian's JupyterHub; nothing can be
 * pulled here). The base images and podman's layer cache persist between runs, so after the first
 * build a run only rebuilds what changed. Images are named under TEST_REGISTRY so nothing here
 * touches images other tests or people made.
 *
 * `prepareImages()` runs while jest collects tests (whether to skip must be known then); it returns
 * the image references, or the reason podman cannot build and run images here, for a loud skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONTAINERS_CONF, prepareEngine, REPO } from '../support/podman';

export { REPO, skipLoudly } from '../support/podman';
export const TEST_REGISTRY = 'localhost/spawngate-images-test';
export const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export interface Images {
  socketPath: string;
  spawngate: string;
  kernel: string;
  hub: string;
  /** Seconds the build script took in this run (warm after the first run on a machine). */
  buildSeconds: number;
}

/**
 * The podman CLI works on the same storage as the shared service; runc, as the service uses (crun
 * fails on these machines), given through a containers.conf of this run's own.
 */
function cliConf(): string {
  const file = path.join(os.tmpdir(), 'spawngate-images-containers.conf');
  const shared = fs.existsSync(CONTAINERS_CONF) ? fs.readFileSync(CONTAINERS_CONF, 'utf8') : '[engine]\n';
  const conf = shared.replace(/^\[engine\]$/m, '[engine]\nruntime = "runc"');
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== conf) fs.writeFileSync(file, conf);
  return file;
}

export function cliEnv(): NodeJS.ProcessEnv {
  return { ...process.env, CONTAINERS_CONF: cliConf() };
}

/** The local podman CLI (builds, saves, inspects images; same storage as the service). */
export function podmanCli(...args: string[]): string {
  return execFileSync('podman', args, { env: cliEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
}

/** A container's output, stdout and stderr together (podman logs writes each to its own stream). */
export function containerLogs(socketPath: string, name: string): string {
  const r = spawnSync('podman', ['--url', `unix://${socketPath}`, 'logs', name], { env: cliEnv(), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

export function prepareImages(only = 'spawngate,kernel,hub'): { images?: Images; unavailable?: string } {
  const engine = prepareEngine();
  if (engine.unavailable) return { unavailable: engine.unavailable };
  if (spawnSync('debootstrap', ['--version']).error) return { unavailable: 'debootstrap is not installed (scripts/setup.sh installs it)' };
  const start = Date.now();
  // The machine's CA bundle for npm inside the build: these machines reach the registry through a
  // TLS-inspecting proxy whose CA only the host trusts (a build secret: it is in no layer).
  const ca = fs.existsSync(HOST_CA_BUNDLE) ? ['--ca-file', HOST_CA_BUNDLE] : [];
  const args = ['--engine', 'podman', '--local-base', '--registry', TEST_REGISTRY, '--only', only, ...ca];
  const r = spawnSync('bash', [path.join(REPO, 'scripts/build-images.sh'), ...args], {
    cwd: REPO,
    env: cliEnv(),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: 3_600_000,
  });
  // A failed build is a failure of the images, not a reason to skip: it throws.
  if (r.status !== 0) throw new Error(`scripts/build-images.sh failed (${r.status ?? r.signal}):\n${(r.stderr ?? '').slice(-6000)}`);
  const refs = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
  return {
    images: {
      socketPath: engine.socketPath!,
      spawngate: refs.spawngate ?? '',
      kernel: refs.kernel ?? '',
      hub: refs.hub ?? '',
      buildSeconds: (Date.now() - start) / 1000,
    },
  };
}

export interface ImageConfig {
  User: string;
  Labels: Record<string, string> | null;
  Healthcheck?: { Test?: string[] } | null;
  Entrypoint: string[] | null;
  Env: string[];
}

export function inspectImage(ref: string): { config: ImageConfig; size: number; healthcheck?: { Test?: string[] } } {
  // podman reports the HEALTHCHECK beside Config, not in it
  const [info] = JSON.parse(podmanCli('image', 'inspect', ref)) as { Config: ImageConfig; Size: number; Healthcheck?: { Test?: string[] } }[];
  return { config: info!.Config, size: info!.Size, healthcheck: info!.Healthcheck ?? info!.Config.Healthcheck ?? undefined };
}
