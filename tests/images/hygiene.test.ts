/**
 * What the built images carry: OCI labels (source, version, licence), a HEALTHCHECK on the images that
 * serve HTTP (spawngate, hub; a kernel speaks ZeroMQ), a numeric non-root user, and no secret in any
 * layer — neither in the build history (`podman history`) nor among the files of every layer
 * (`podman save`: deleted files of lower layers included), by name and by content.
 */
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { inspectImage, podmanCli, prepareImages, REPO, skipLoudly } from './images';

jest.setTimeout(900_000);

const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string; license: string };

/** File names that are secrets or hold them wherever they appear. */
const SECRET_NAMES: [RegExp, string][] = [
  [/(^|\/)\.env(\.[\w-]+)?$/, 'dotenv file'],
  [/(^|\/)id_(rsa|dsa|ecdsa|ed25519)$/, 'SSH private key'],
  [/(^|\/)\.(git-credentials|netrc|pypirc)$/, 'credentials file'],
  [/(^|\/)\.docker\/config\.json$/, 'registry credentials'],
  [/(^|\/)\.ssh\//, 'SSH directory'],
  [/(^|\/)\.git\/config$/, 'git checkout'],
  [/(^|\/)(root|home\/[^/]+)\/\.npm\//, 'npm cache (may hold auth)'],
];
/**
 * Contents that are secrets: a PEM private key (its header followed by key material, not the bare
 * header string parsers carry), tokens by their published formats, and credentials in npm's config
 * files (npmrc: auth settings with a value).
 */
const SECRET_CONTENT: [RegExp, string, RegExp?][] = [
  [/-----BEGIN (RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----\r?\n(Proc-Type:[^\n]*\n|DEK-Info:[^\n]*\n|\r?\n)*[A-Za-z0-9+/=]{40,}/, 'private key'],
  [/^\s*(\/\/[^\s]*:)?(_authToken|_auth|_password)\s*=\s*\S/m, 'npm credentials', /(^|\/)\.?npmrc$/],
  [/\bnpm_[A-Za-z0-9]{36}\b/, 'npm token'],
  [/\bgh[pousr]_[A-Za-z0-9]{36}\b/, 'GitHub token'],
  [/\bAKIA[0-9A-Z]{16}\b/, 'AWS access key id'],
];

interface Finding {
  layer: string;
  file: string;
  what: string;
}

function readAll(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/** Every regular file of one layer tar, checked by name and content. */
function scanLayer(layer: string, data: Readable, findings: Finding[], counted: { files: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const ex = extract();
    ex.on('entry', (header, stream, next) => {
      const file = header.name.replace(/^\.\//, '');
      for (const [re, what] of SECRET_NAMES) if (re.test(file) || re.test(`${file}/`)) findings.push({ layer, file, what });
      if (header.type !== 'file') {
        stream.resume();
        stream.on('end', next);
        return;
      }
      counted.files += 1;
      // tar-stream's entries are streamx streams: Node-compatible for on/pipe, typed apart.
      readAll(stream as unknown as Readable)
        .then((buf) => {
          // Compiled code (ELF) carries PEM headers and base64 tables as parser constants, not keys.
          const elf = buf.length > 4 && buf.readUInt32BE(0) === 0x7f454c46;
          const text = buf.toString('latin1');
          for (const [re, what, only] of SECRET_CONTENT) if (!elf && (!only || only.test(file)) && re.test(text)) findings.push({ layer, file, what });
          next();
        })
        .catch(reject);
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
    data.pipe(ex);
  });
}

/** `podman save` (docker-archive: one tar per layer inside) and every layer scanned. */
async function scanImage(ref: string): Promise<{ findings: Finding[]; layers: number; files: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-image-scan-'));
  try {
    const archive = path.join(dir, 'image.tar');
    podmanCli('save', '--format', 'docker-archive', '-o', archive, ref);
    const findings: Finding[] = [];
    const counted = { files: 0 };
    let layers = 0;
    await new Promise<void>((resolve, reject) => {
      const outer = extract();
      outer.on('entry', (header, stream, next) => {
        if (header.type === 'file' && /(^|\/)(layer\.tar|[0-9a-f]{64}\.tar)$/.test(header.name)) {
          layers += 1;
          scanLayer(header.name, stream as unknown as Readable, findings, counted).then(() => next(), reject);
        } else {
          stream.resume();
          stream.on('end', next);
        }
      });
      outer.on('finish', resolve);
      outer.on('error', reject);
      createReadStream(archive).pipe(outer);
    });
    return { findings, layers, files: counted.files };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const prepared = prepareImages();

if (!prepared.images) {
  skipLoudly('image labels, healthchecks and secrets', prepared.unavailable!);
} else {
  const { images } = prepared;
  const all = [
    ['spawngate', images.spawngate, true],
    ['kernel', images.kernel, false],
    ['hub', images.hub, true],
  ] as const;

  test.each(all)('%s: OCI labels (source, version, licence), numeric non-root user, HEALTHCHECK only where HTTP is served', (_name, ref, serves) => {
    const { config, size, healthcheck } = inspectImage(ref);
    console.log(`${ref}: ${(size / 1e6).toFixed(1)} MB`);
    const labels = config.Labels ?? {};
    expect(labels['org.opencontainers.image.source']).toBe('https://github.com/spawngate/spawngate');
    expect(labels['org.opencontainers.image.version']).toBe(pkg.version);
    expect(labels['org.opencontainers.image.licenses']).toBe(pkg.license);
    expect(labels['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}$|^unknown$/);
    expect(config.User).toMatch(/^[1-9][0-9]*(:[0-9]+)?$/);
    if (serves) expect(healthcheck?.Test?.[0]).toBe('CMD');
    else expect(healthcheck?.Test ?? []).toEqual([]);
  });

  test.each(all)('%s: no secret in the build history or the environment', (_name, ref) => {
    const history = JSON.parse(podmanCli('history', '--no-trunc', '--format', 'json', ref)) as { CreatedBy?: string; createdBy?: string }[];
    const steps = history.map((h) => h.CreatedBy ?? h.createdBy ?? '');
    expect(steps.length).toBeGreaterThan(3);
    const secretish = /(TOKEN|PASSWORD|SECRET|_KEY|_auth)[A-Z_]*=\S/i;
    expect(steps.filter((s) => secretish.test(s))).toEqual([]);
    expect(inspectImage(ref).config.Env.filter((e) => secretish.test(e))).toEqual([]);
  });

  test.each(all)('%s: no secret among the files of any layer (names and contents)', async (_name, ref) => {
    const { findings, layers, files } = await scanImage(ref);
    console.log(`${ref}: ${layers} layers, ${files} files scanned`);
    expect(layers).toBeGreaterThan(1);
    expect(files).toBeGreaterThan(1000);
    expect(findings.map((f) => `${f.what}: ${f.file}`)).toEqual([]);
  });

  test('the scanner finds what it looks for (an image with planted secrets)', async () => {
    // One layer on the Debian base holding each kind, then deleted in a later layer: still found.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-planted-'));
    const ref = `localhost/spawngate-images-test/planted:${process.pid}`;
    try {
      // a key's shape (header, then base64 lines), split so this file holds no key itself
      const fake = `${['-----BEGIN', 'OPENSSH PRIVATE KEY-----'].join(' ')}\\n${'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ'.repeat(2)}`;
      writeFileSync(
        path.join(dir, 'Dockerfile'),
        [`FROM ${images.kernel}`, 'USER 0', `RUN mkdir -p /root/.ssh && printf '%b\\n' '${fake}' > /root/.ssh/id_ed25519 && cp /root/.ssh/id_ed25519 /opt/key.pem && echo 'A=1' > /.env && echo '//registry.example/:_authToken=abc123' > /opt/.npmrc`, 'RUN rm -rf /root/.ssh /.env /opt/key.pem /opt/.npmrc', 'USER 1000'].join('\n'),
      );
      podmanCli('build', '--format', 'docker', '-t', ref, dir);
      const { findings } = await scanImage(ref);
      const kinds = new Set(findings.map((f) => f.what));
      expect(kinds).toEqual(new Set(['SSH private key', 'SSH directory', 'dotenv file', 'private key', 'npm credentials']));
      expect(findings.filter((f) => f.what === 'private key').map((f) => f.file).sort()).toEqual(['opt/key.pem', 'root/.ssh/id_ed25519']);
    } finally {
      try {
        podmanCli('rmi', '--force', ref);
      } catch {
        // not built
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
