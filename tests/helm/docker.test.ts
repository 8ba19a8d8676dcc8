/**
 * docker/: the Dockerfiles are parsed with dockerfile-ast, linted
 * with dockerfile-utils' validator, checked structurally, and their entrypoints are run directly (the
 * images themselves are built and run in tests/images).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DockerfileParser, type Instruction as AstInstruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import YAML from 'yaml';
import { nth, REPO } from './chart-render';

jest.setTimeout(120_000);

interface Instruction {
  op: string;
  /** Flags first (`--from=build`), then the arguments, continuations joined. */
  args: string;
  line: number;
}

function flagsOf(i: AstInstruction): string[] {
  const withFlags = i as AstInstruction & { getFlags?: () => { getName(): string; getValue(): string | null }[] };
  return (withFlags.getFlags?.() ?? []).map((f) => (f.getValue() === null ? `--${f.getName()}` : `--${f.getName()}=${f.getValue()}`));
}

function parseDockerfile(text: string): Instruction[] {
  return DockerfileParser.parse(text)
    .getInstructions()
    .map((i) => ({ op: i.getKeyword().toUpperCase(), args: [...flagsOf(i), i.getArgumentsContent() ?? ''].join(' ').trim(), line: i.getRange().start.line + 1 }));
}

const KNOWN = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

function stages(ins: Instruction[]): Instruction[][] {
  const s: Instruction[][] = [];
  for (const i of ins) {
    if (i.op === 'FROM') s.push([]);
    if (!s.length && i.op !== 'ARG') throw new Error(`line ${i.line}: ${i.op} before FROM`);
    if (s.length) nth(s, s.length - 1).push(i);
  }
  return s;
}

function load(name: string) {
  const file = path.join(REPO, 'docker', name, 'Dockerfile');
  const ins = parseDockerfile(readFileSync(file, 'utf8'));
  return { ins, stages: stages(ins), ignore: readFileSync(`${file}.dockerignore`, 'utf8') };
}

function last(stage: Instruction[], op: string): Instruction | undefined {
  return [...stage].reverse().find((i) => i.op === op);
}

/** `COPY [--flags] src... dest` sources (without --from). */
function copySources(i: Instruction): string[] {
  const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
  return parts.slice(0, -1);
}

describe.each(['spawngate', 'kernel', 'hub'])('docker/%s/Dockerfile', (name) => {
  const { ins, stages: st } = load(name);
  const final = nth(st, st.length - 1);

  test('the linter finds nothing; only known instructions; final stage runs as a non-root user', () => {
    const text = readFileSync(path.join(REPO, 'docker', name, 'Dockerfile'), 'utf8');
    const problems = validate(text);
    expect(problems.map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
    for (const i of ins) expect([i.line, i.op, KNOWN.has(i.op)]).toEqual([i.line, i.op, true]);
    const user = last(final, 'USER');
    expect(user).toBeDefined();
    const who = user!.args.split(':')[0];
    expect(['root', '0', '']).not.toContain(who);
    expect(who).toMatch(/^[1-9][0-9]*$/); // numeric, so runAsNonRoot can verify it
  });

  test('files it copies from the context exist and are not excluded by its .dockerignore', () => {
    const { ignore } = load(name);
    for (const stage of st) {
      for (const i of stage.filter((x) => (x.op === 'COPY' || x.op === 'ADD') && !/--from=/.test(x.args))) {
        for (const src of copySources(i)) {
          expect([src, existsSync(path.join(REPO, src))]).toEqual([src, true]);
          const top = src.split('/')[0] ?? src;
          expect(ignore).toMatch(new RegExp(`^!${top.replace(/[.]/g, '\\.')}`, 'm'));
        }
      }
    }
  });
});

test('the linter used above reports real mistakes (so an empty report means something)', () => {
  const broken = 'RUN echo before any FROM\nFROM debian:bookworm\nCOPY only-one-argument\nEXPOSE notaport\nUSER\n';
  const messages = validate(broken).map((d) => d.message);
  expect(messages.length).toBeGreaterThanOrEqual(3);
  expect(parseDockerfile(broken).map((i) => i.op)).toEqual(['RUN', 'FROM', 'COPY', 'EXPOSE', 'USER']);
});

describe('images', () => {
  test('spawngate: multi-stage node:20-bookworm-slim build → runtime, entrypoint node bin/spawngate.js', () => {
    const { stages: st } = load('spawngate');
    expect(st.length).toBeGreaterThanOrEqual(2);
    const dockerfile = readFileSync(path.join(REPO, 'docker/spawngate/Dockerfile'), 'utf8');
    // bookworm named: scripts/build-base-images.sh makes the same Debian release when nothing can be pulled
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    const runtime = nth(st, st.length - 1);
    expect(runtime.some((i) => i.op === 'COPY' && /--from=build/.test(i.args) && /dist/.test(i.args))).toBe(true);
    expect(runtime.some((i) => i.op === 'RUN' && /npm (ci|install)/.test(i.args))).toBe(false);
    expect(JSON.parse(last(runtime, 'ENTRYPOINT')!.args)).toEqual(['node', 'bin/spawngate.js']);
    // the path the entrypoint needs is what the build produces
    expect(readFileSync(path.join(REPO, 'bin/spawngate.js'), 'utf8')).toMatch(/dist\/cli\/main\.js/);
    // the chart runs this image with a read-only root: the data dir it sets is one the chart mounts
    const env = runtime.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
    expect(env).toMatch(/SPAWNGATE_DATA_DIR=\/var\/lib\/spawngate/);
  });

  test("kernel: Debian's ipykernel + python-shim, entrypoint python -m spawngate.launcher", () => {
    const { stages: st } = load('kernel');
    const final = nth(st, st.length - 1);
    expect(readFileSync(path.join(REPO, 'docker/kernel/Dockerfile'), 'utf8')).toMatch(/^ARG BASE_IMAGE=debian:bookworm-slim$/m);
    expect(final.some((i) => i.op === 'RUN' && /apt-get install .*python3-ipykernel/.test(i.args))).toBe(true);
    expect(final.some((i) => i.op === 'RUN' && /pip install .*python-shim/.test(i.args))).toBe(true);
    expect(JSON.parse(last(final, 'ENTRYPOINT')!.args)).toEqual(['python', '-m', 'spawngate.launcher']);
  });

  test('hub: FROM the z2jh hub image with python-shim installed', () => {
    const text = readFileSync(path.join(REPO, 'docker/hub/Dockerfile'), 'utf8');
    expect(text).toMatch(/^ARG HUB_IMAGE=quay\.io\/jupyterhub\/k8s-hub:\S+$/m);
    const { stages: st } = load('hub');
    expect(nth(nth(st)).args).toBe('${HUB_IMAGE}');
    expect(nth(st).some((i) => i.op === 'RUN' && /pip install .*python-shim/.test(i.args))).toBe(true);
    // the tag in the z2jh example matches what this Dockerfile documents
    const z2jh = YAML.parse(readFileSync(path.join(REPO, 'helm/spawngate/examples/z2jh-values.yaml'), 'utf8'));
    expect(text).toContain(`spawngate-hub:${z2jh.hub.image.tag}`);
  });
});

describe('entrypoints, run directly', () => {
  const python = ['python3', 'python'].find((p) => spawnSync(p, ['--version']).status === 0);

  test('the kernel entrypoint (python -m spawngate.launcher) writes the connection file and execs the kernel argv', () => {
    if (!python) throw new Error('python3 is required (it is on the CI machine)');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-launch-'));
    const conn = { shell_port: 5001, iopub_port: 5002, stdin_port: 5003, control_port: 5004, hb_port: 5005, key: 'k3y', signature_scheme: 'hmac-sha256', transport: 'tcp', ip: '0.0.0.0' };
    const source = path.join(dir, 'connection.json');
    writeFileSync(source, JSON.stringify(conn));
    const probe = 'import json,os,sys; c=json.load(open(sys.argv[1])); print(json.dumps({"shell": c["shell_port"], "pid": os.getpid(), "mode": oct(os.stat(sys.argv[1]).st_mode & 0o777)}))';
    const r = spawnSync(python, ['-m', 'spawngate.launcher'], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        PYTHONPATH: path.join(REPO, 'python-shim'),
        SPAWNGATE_CONNECTION_SOURCE: source,
        SPAWNGATE_KERNEL_ARGV: JSON.stringify([python, '-c', probe, '{connection_file}']),
        SPAWNGATE_RUNTIME_DIR: dir,
        KERNEL_ID: 'k-test',
      },
    });
    expect(r.stderr).not.toMatch(/Traceback/);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.shell).toBe(5001);
    expect(out.mode).toBe('0o600');
    expect(r.stdout + r.stderr).not.toContain('k3y');
  });

  test('the spawngate entrypoint has the roles the chart runs (serve --no-workers, worker, migrate)', () => {
    if (!existsSync(path.join(REPO, 'dist/cli/main.js'))) throw new Error('dist/ missing: run npm run build (npm install does)');
    const help = spawnSync('node', ['bin/spawngate.js', '--help'], { cwd: REPO, encoding: 'utf8' });
    expect(help.status).toBe(0);
    for (const c of ['serve', 'worker', 'migrate']) expect(help.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
    const serve = spawnSync('node', ['bin/spawngate.js', 'serve', '--help'], { cwd: REPO, encoding: 'utf8' });
    expect(serve.stdout).toContain('--no-workers');
  });

  test('`spawngate migrate` (the hook Job) applies migrations and exits 0, read-only apart from its data dir', () => {
    const data = mkdtempSync(path.join(os.tmpdir(), 'sg-migrate-'));
    const env = { PATH: process.env.PATH, HOME: data, SPAWNGATE_DATA_DIR: data, SPAWNGATE_LOG_LEVEL: 'error' };
    const first = spawnSync('node', ['bin/spawngate.js', 'migrate'], { cwd: REPO, encoding: 'utf8', env });
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/^applied: /);
    const again = spawnSync('node', ['bin/spawngate.js', 'migrate'], { cwd: REPO, encoding: 'utf8', env });
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/up to date/);
  });
});

describe('chart ↔ service configuration', () => {
  test('every SPAWNGATE_* variable the chart sets is one the service documents', () => {
    const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const documented = new Set<string>([...readme.matchAll(/^\| `(SPAWNGATE_[A-Z_]+)` \|/gm)].map((m) => m[1] ?? ''));
    expect(documented.size).toBeGreaterThan(10);
    const helpers = readFileSync(path.join(REPO, 'helm/spawngate/templates/_helpers.tpl'), 'utf8');
    const set = new Set<string>([...helpers.matchAll(/(SPAWNGATE_[A-Z_]+)/g)].map((m) => m[1] ?? ''));
    // Not yet in the service's table: the namespace of the kubernetes backend (its options take one;
    // the env variable arrives with the backend's wiring).
    const pending = new Set(['SPAWNGATE_KUBERNETES_NAMESPACE']);
    const unknown = [...set].filter((v) => !documented.has(v) && !pending.has(v));
    expect(unknown).toEqual([]);
  });
});
