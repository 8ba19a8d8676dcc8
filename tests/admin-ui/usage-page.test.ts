/**
 * The admin usage page in a real browser (Debian's Chromium through playwright-core) against a real
 * service on Postgres with the local backend (real ipykernel processes): a user's token is refused,
 * an admin signs in with the keyboard, sees the experiment with its running kernel exactly as
 * `spawngate admin usage` reports it, watches the count change after a launch and a shutdown, sees
 * the 24-hour chart, and filters the audit log. A screenshot of each view is kept under
 * test-artifacts/admin-ui/ (gitignored).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { runAdmin } from '../../src/cli/admin';
import { createService, type Service } from '../../src/compose';
import { loadConfig } from '../../src/config';
import { mintToken } from '../../src/db';
import { captureLogger, createTestPostgres, type TestPostgres } from '../db/helpers';

jest.setTimeout(240_000);

const REPO = path.resolve(__dirname, '..', '..');
const ARTIFACTS = path.join(REPO, 'test-artifacts', 'admin-ui');
const CHROMIUM = '/usr/bin/chromium';
const ADMIN = 'admin-token-for-h16-page-0123456789';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-h16-page-'));
const homes = path.join(root, 'homes');
const kdir = path.join(homes, 'alice', '.conda', 'envs', 'tf', 'share', 'jupyter', 'kernels', 'python3');
fs.mkdirSync(kdir, { recursive: true });
fs.writeFileSync(path.join(kdir, 'kernel.json'), JSON.stringify({ argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'tf', language: 'python' }));

fs.writeFileSync(path.join(root, 'config.yaml'), 'usage:\n  sample_interval_seconds: 10\n');

let pg: TestPostgres;
let service: Service;
let base: string;
let userToken: string;
let context: BrowserContext;
let page: Page;
const kernels: string[] = [];
let dbEnv: NodeJS.ProcessEnv;

const launch = async (): Promise<string> => {
  const res = await request(service.app!).post('/api/kernels').set({ Authorization: `token ${userToken}` }).send({ name: 'conda-env-tf-python3' });
  expect(res.status).toBe(201);
  return res.body.id as string;
};
const shutdown = (id: string) => request(service.app!).delete(`/api/kernels/${id}`).set({ Authorization: `token ${userToken}` }).expect(204);
const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
const kernelsCell = () => page.locator('#experiments tr[data-experiment="genomics"] td[data-field="kernels"]');

async function adminUsage(): Promise<Array<Record<string, number | string>>> {
  let out = '';
  expect(await runAdmin(['--json', 'usage'], { env: dbEnv, io: { stdout: (s) => void (out += s), stderr: () => undefined } })).toBe(0);
  return JSON.parse(out);
}

beforeAll(async () => {
  // The page as this checkout builds it (the same two steps as `npm run build` for it).
  for (const cmd of [['npx', 'tsc', '-p', 'src/admin-ui/tsconfig.json'], ['node', 'scripts/copy-assets.js']]) {
    const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: REPO, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed: ${r.stdout}${r.stderr}`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  pg = await createTestPostgres();
  dbEnv = { SPAWNGATE_DATABASE_URL: pg.url, SPAWNGATE_DATA_DIR: path.join(root, 'data') };
  service = await createService(
    loadConfig({ ...dbEnv, SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_LOCAL_SHARED_IDENTITY: '1', SPAWNGATE_ADMIN_TOKEN: ADMIN, SPAWNGATE_CONFIG: path.join(root, 'config.yaml'), SPAWNGATE_PORT: '0', SPAWNGATE_BIND: '127.0.0.1' }),
    { logger: captureLogger().logger },
  );
  base = `http://127.0.0.1:${await service.listen()}`;
  await service.db.query(`
    INSERT INTO users (username) VALUES ('alice'), ('bob');
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('genomics', 0.25, 1, 256, 1024), ('physics', 1, 2, 512, 2048);
    INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'genomics';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'genomics';
  `);
  userToken = await mintToken(service.db, { username: 'alice', kind: 'cli' });
  kernels.push(await launch());
  context = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(os.tmpdir(), 'sg-h16-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
});

afterAll(async () => {
  await context?.close();
  for (const k of await service.kernels.list(undefined)) await service.kernels.shutdown(undefined, k.id);
  await service?.close();
  await pg?.drop();
});

test('the page is served with a strict content security policy and holds no data', async () => {
  const res = await request(service.app!).get('/admin/');
  expect(res.status).toBe(200);
  expect(res.headers['content-security-policy']).toContain("script-src 'self'");
  expect(res.text).not.toContain('genomics');
  expect((await request(service.app!).get('/admin/../package.json')).status).toBe(404);
  expect((await request(service.app!).get('/admin/nothing.js')).status).toBe(404);
});

test("a user's token is refused and nothing is shown", async () => {
  await page.goto(`${base}/admin/`);
  await page.getByLabel('Admin token').fill(userToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await hasText(page.locator('#login-error'), /This token cannot sign in: .*admin/);
  expect(await page.locator('#app').isHidden()).toBe(true);
  expect(await page.getByRole('button', { name: 'Refresh' }).isVisible()).toBe(false);
  expect(await page.evaluate("sessionStorage.getItem('spawngate-admin-token')")).toBeNull();
  await shot('1-refused');
});

test('an admin signs in with the keyboard and sees the experiment with its running kernel, as `admin usage` reports it', async () => {
  await page.goto(`${base}/admin/`);
  await page.getByLabel('Admin token').focus();
  await page.keyboard.type(ADMIN);
  await page.keyboard.press('Enter');
  await hasText(kernelsCell(), '1', 20_000);
  const usage = (await adminUsage()).find((u) => u.experiment === 'genomics')!;
  const row = page.locator('#experiments tr[data-experiment="genomics"]');
  expect(await kernelsCell().textContent()).toBe(String(usage.kernels));
  expect(await row.locator('td[data-field="cpu"]').textContent()).toBe(`${usage.cpu_request} / ${usage.cpu_limit}`);
  expect(await row.locator('td[data-field="memory"]').textContent()).toBe(`${usage.memory_request_mib} / ${usage.memory_limit_mib}`);
  await row.locator('summary').click();
  await until(async () => JSON.stringify(await row.locator('li').allTextContents()) === JSON.stringify(['alice', 'bob']), () => texts(row.locator('li')));
  expect(await page.locator('#experiments tr[data-experiment="physics"] td[data-field="kernels"]').textContent()).toBe('0');
  // The token lives in this tab's session storage only.
  expect(await page.evaluate("[sessionStorage.getItem('spawngate-admin-token'), localStorage.length]")).toEqual([ADMIN, 0]);
  await shot('2-experiments');
});

test('the count follows a launch and a shutdown', async () => {
  kernels.push(await launch());
  await page.getByRole('button', { name: 'Refresh' }).click();
  await hasText(kernelsCell(), '2', 20_000);
  await shot('3-after-launch');
  for (const id of kernels.splice(0)) await shutdown(id);
  await page.getByRole('button', { name: 'Refresh' }).click();
  await hasText(kernelsCell(), '0', 20_000);
  expect((await adminUsage()).find((u) => u.experiment === 'genomics')!.kernels).toBe(0);
  await shot('4-after-shutdown');
});

test('the 24-hour chart draws the samples the service took', async () => {
  const chart = page.locator('#chart svg');
  // Samples are taken every 10 s here (usage.sample_interval_seconds); the page redraws on Refresh.
  await until(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await new Promise((r) => setTimeout(r, 500));
    return (await chart.count()) === 1 && (await texts(page.locator('#chart .legend'))).includes('genomics');
  }, () => texts(page.locator('#chart-caption')), 40_000);
  expect(await chart.getAttribute('role')).toBe('img');
  expect(await page.locator('#chart svg path').count()).toBeGreaterThanOrEqual(2);
  expect(await page.locator('#chart svg circle').count()).toBeGreaterThanOrEqual(2);
  await page.locator('#history-title').scrollIntoViewIfNeeded();
  await shot('5-chart');
});

test('the audit log filters by action and by actor', async () => {
  await page.getByLabel('Action').fill('experiments.');
  await page.getByRole('button', { name: 'Filter' }).click();
  await contains(page.locator('#audit-caption'), 'matching the filters');
  const actions = await page.locator('#audit tbody tr td:nth-child(3)').allTextContents();
  expect(actions.length).toBeGreaterThanOrEqual(2);
  for (const a of actions) expect(a.startsWith('experiments.')).toBe(true);
  await shot('6-audit-filtered');
  await page.getByLabel('Actor').fill('nobody-at-all');
  await page.getByRole('button', { name: 'Filter' }).click();
  await contains(page.locator('#audit-caption'), '0 entries');
  await page.getByRole('button', { name: 'Clear' }).click();
  await lacks(page.locator('#audit-caption'), 'matching');
});

test('every form control has a label, and signing out forgets the token', async () => {
  // (a string: the test program has no DOM types; this runs in the page)
  const unlabelled = await page.evaluate("[...document.querySelectorAll('input')].filter((i) => !(i.labels && i.labels.length > 0)).map((i) => i.id || i.name)");
  expect(unlabelled).toEqual([]);
  await page.getByRole('button', { name: 'Sign out' }).click();
  expect(await page.locator('#login').isVisible()).toBe(true);
  expect(await page.evaluate("sessionStorage.getItem('spawngate-admin-token')")).toBeNull();
});

/** Polls `check` until it holds (the page updates asynchronously); fails with what the page shows. */
async function until(check: () => Promise<boolean>, shows: () => Promise<string>, timeout = 10_000): Promise<void> {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeout} ms; the page shows: ${await shows().catch((e) => String(e))}`);
}
const texts = async (loc: Locator): Promise<string> => (await loc.allTextContents()).join(' | ');
const hasText = (loc: Locator, want: string | RegExp, timeout?: number) =>
  until(async () => { const t = (await loc.textContent()) ?? ''; return typeof want === 'string' ? t === want : want.test(t); }, () => texts(loc), timeout);
const contains = (loc: Locator, want: string, timeout?: number) => until(async () => (await texts(loc)).includes(want), () => texts(loc), timeout);
const lacks = (loc: Locator, want: string, timeout?: number) => until(async () => !(await texts(loc)).includes(want), () => texts(loc), timeout);
