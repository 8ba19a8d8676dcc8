/**
 * A real container engine for the docker backend's tests: podman's Docker-compatible API, set up by
 * scripts/setup-podman.sh (installs podman/runc/busybox-static if missing, starts the service, builds
 * `localhost/spawngate-test:latest` from busybox). Containers run the host's Debian Python (ipykernel,
 * jupyterhub-singleuser) through read-only bind mounts of /usr, /lib, /lib64 and /bin.
 *
 * `prepareEngine()` runs while jest collects tests, because whether to skip must be known when tests
 * are declared; when the machine cannot run containers at all, the reason is returned for a loud skip.
 */
import { execFileSync, execSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(__dirname, '../..');
export const TEST_IMAGE = 'localhost/spawngate-test:latest';
export const PODMAN_DIR = process.env.SPAWNGATE_PODMAN_DIR ?? '/tmp/spawngate-podman';
export const CONTAINERS_CONF = path.join(PODMAN_DIR, 'containers.conf');
/** The host's software, read-only, so the busybox image can run Debian's Python. */
export const HOST_BINDS = ['/usr:/usr:ro', '/lib:/lib:ro', '/lib64:/lib64:ro', '/bin:/bin:ro'];
/** The spawngate Python package (launcher) at the same path inside containers. */
export const SHIM_BIND = `${path.join(REPO, 'python-shim')}:${path.join(REPO, 'python-shim')}:ro`;
/** Launcher command for container kernels in tests (the image has no pip-installed spawngate). */
export const TEST_LAUNCHER = ['/usr/bin/python3', path.join(REPO, 'python-shim', 'spawngate', 'launcher.py')];
/** uid/gid test homes are given (workloads run as the home owner, never root). */
export const TEST_UID = 1000;

export interface Engine {
  socketPath?: string;
  unavailable?: string;
}

export function prepareEngine(): Engine {
  let socketPath: string;
  try {
    const out = execSync(`bash ${path.join(REPO, 'scripts/setup-podman.sh')}`, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 600_000,
    });
    socketPath = out.trim().split('\n').pop()!;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    // setup-podman.sh fails, with the engine's message, when podman cannot run a container here.
    return { unavailable: `scripts/setup-podman.sh failed: ${(e.stderr || e.message).trim().split('\n').slice(-3).join(' | ')}` };
  }
  return { socketPath };
}

/** Runs the podman CLI against the test service; returns stdout. */
export function podman(socketPath: string, ...args: string[]): string {
  return execFileSync('podman', ['--url', `unix://${socketPath}`, ...args], {
    env: { ...process.env, CONTAINERS_CONF },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * An address of this machine that containers on podman's bridge can reach (the hub and spawngate
 * listen there for the servers and kernels inside containers): the first non-loopback IPv4.
 */
export function hostAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('no non-loopback IPv4 address: containers could not reach the host');
}

/** Declares one skipped test carrying the reason, and says it loudly (never a silent skip). */
export function skipLoudly(what: string, reason: string): void {
  console.warn(`\n*** ${what} SKIPPED: ${reason} ***\n`);
  test.skip(`${what} — skipped: ${reason}`, () => undefined);
}
