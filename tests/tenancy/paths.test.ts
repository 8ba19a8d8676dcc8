/**
 * Kernelspec and resource errors never echo a filesystem path (issue 11): asking for `../bob/…`, or
 * for a resource that is a symlink into bob's home, answers a plain 404 that names no path and reads
 * the same whether bob's file exists or not (no existence oracle). The reason goes to the log.
 */
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { mintToken } from '../../src/db';
import { ADMIN, as, condaKernel, startEdgeService, type EdgeService } from './tokens-service';

jest.setTimeout(90_000);

let edge: EdgeService;
let alice: string;
let aliceKernelDir: string;
let bobKernelDir: string;
const api = () => request(edge.service.app!);

beforeAll(async () => {
  edge = await startEdgeService('paths');
  alice = await mintToken(edge.service.db, { username: 'alice', kind: 'cli' });
  aliceKernelDir = condaKernel(edge.homes, 'alice', 'tf');
  bobKernelDir = condaKernel(edge.homes, 'bob', 'tf');
  fs.writeFileSync(path.join(bobKernelDir, 'logo-64x64.png'), 'BOB-PRIVATE');
  // Alice plants symlinks to a file of bob's that exists, one that does not, and to a directory.
  fs.symlinkSync(path.join(bobKernelDir, 'logo-64x64.png'), path.join(aliceKernelDir, 'logo-32x32.png'));
  fs.symlinkSync(path.join(bobKernelDir, 'no-such-file.png'), path.join(aliceKernelDir, 'logo-svg.svg'));
  fs.symlinkSync(path.join(edge.homes, 'bob'), path.join(aliceKernelDir, 'kernel.js'));
});
afterAll(() => edge?.close());

function expectNoPath(body: unknown, text: string): void {
  const all = `${JSON.stringify(body)} ${text}`;
  expect(all).not.toContain(edge.root);
  expect(all).not.toContain(edge.homes);
  expect(all).not.toMatch(/bob/);
  expect(all).not.toContain('.conda');
  expect(all).not.toContain('BOB-PRIVATE');
}

test("path-free errors: `../bob/…` resources answer 404 naming no path", async () => {
  for (const url of [
    '/kernelspecs/conda-env-tf-python3/..%2F..%2F..%2F..%2F..%2F..%2Fbob%2F.conda%2Fenvs%2Ftf%2Fshare%2Fjupyter%2Fkernels%2Fpython3%2Fkernel.json',
    '/kernelspecs/conda-env-tf-python3/..%2Fbob',
    '/kernelspecs/..%2F..%2Fbob/kernel.json',
  ]) {
    const res = await api().get(url).set(as(alice));
    expect([url, res.status]).toEqual([url, 404]);
    expectNoPath(res.body, res.text);
  }
});

test("path-free errors: symlinked resources into bob's home answer the same 404 whether the target exists or not", async () => {
  const existing = await api().get('/kernelspecs/conda-env-tf-python3/logo-32x32.png').set(as(alice));
  const missing = await api().get('/kernelspecs/conda-env-tf-python3/logo-svg.svg').set(as(alice));
  const directory = await api().get('/kernelspecs/conda-env-tf-python3/kernel.js').set(as(alice));
  for (const res of [existing, missing, directory]) {
    expect(res.status).toBe(404);
    expectNoPath(res.body, res.text);
  }
  expect(existing.body).toEqual(missing.body);
  expect(missing.body).toEqual(directory.body);
  expect(existing.body.message).toBe('kernel spec conda-env-tf-python3 has no such resource');
  // The operator still learns why, from the log.
  const logged = edge.records.filter((r) => r.message === 'request refused' && r.kernelspec === 'conda-env-tf-python3');
  expect(logged.length).toBeGreaterThanOrEqual(3);
  expect(JSON.stringify(logged)).toContain(edge.homes);
});

test("path-free errors: asking for bob's kernelspec or resource as the admin names no path", async () => {
  fs.writeFileSync(path.join(bobKernelDir, 'kernel.json'), '{ not json');
  const spec = await api().get('/api/kernelspecs/conda-env-tf-python3?user=bob').set(as(ADMIN));
  expect(spec.status).toBe(404);
  expect(JSON.stringify(spec.body)).not.toContain(edge.homes);
  const res = await api().get('/kernelspecs/conda-env-tf-python3/logo-64x64.png?user=bob').set(as(ADMIN));
  expect(res.status).toBe(404);
  expect(JSON.stringify(res.body)).not.toContain(edge.homes);
});
