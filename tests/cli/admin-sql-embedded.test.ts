/**
 * Every ```sql block of docs/admin-sql.md runs, in order, through `spawngate sql -c` on the embedded
 * default (psql, as installed here), each block its own process as an administrator would type it.
 * Blocks marked `-- expect error: <constraint>` must fail naming the constraint; titled read-only
 * queries print the same through the built-in reader (--no-psql) as through psql.
 */
import fs from 'node:fs';
import path from 'node:path';
import { migrate, openEmbeddedDb, type Db } from '../../src/db';
import { insertKernel } from '../admin/helpers';
import { cli, freshDataDir, waitGone } from './embedded-support';

jest.setTimeout(300_000);

const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'admin-sql.md'), 'utf8');
const blocks = [...doc.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());

let dir: string;
let db: Db;
beforeAll(async () => {
  dir = freshDataDir('doc');
  // The test holds the engine, so each `spawngate sql` is a client (as when serve runs).
  db = await openEmbeddedDb({ dataDir: dir });
  await migrate(db);
});
afterAll(async () => {
  await db?.close();
  expect(await waitGone(path.dirname(dir))).toEqual([]);
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});

test('every SQL example of docs/admin-sql.md runs through `spawngate sql -c` with the documented outcome', async () => {
  expect(blocks.length).toBeGreaterThan(20);
  let failures = 0;
  let compared = 0;
  for (const [i, sql] of blocks.entries()) {
    const title = /^-- (.+)$/.exec(sql.split('\n')[0]!)?.[1];
    const failure = title?.startsWith('expect error: ') ? title.slice('expect error: '.length) : undefined;
    if (title === 'usage') {
      await insertKernel(db, { experiment: 'genomics', username: 'alice', state: 'running', limits: { cpu_request: 0.5, cpu_limit: 4, memory_request_mib: 512, memory_limit_mib: 8192, gpu_limit: 0 } });
    }
    const r = cli(dir, ['sql', '-c', sql]);
    if (failure) {
      expect({ i, status: r.status }).toEqual({ i, status: 1 });
      expect(r.stderr).toContain(failure);
      failures++;
      continue;
    }
    if (r.status !== 0) throw new Error(`example ${i} failed:\n${sql}\n→ ${r.stderr}`);
    if (title === 'recent changes to genomics') {
      // Each `sql -c` is its own session, so the earlier `SET spawngate.actor` did not carry over: the
      // audit names the database role, as the document says.
      expect(r.stdout).toMatch(/sql:spawngate \| experiments\.insert \| +\| 2\n/);
      expect(r.stdout).toMatch(/sql:spawngate \| experiments\.update \| 2 +\| 4\n/);
    }
    if (title === 'usage') expect(r.stdout).toMatch(/genomics +\| +1 \| +0\.5 \| +4 \| +8192 \| +0\n/);
    const code = sql.replace(/--.*$/gm, '');
    if (title && /^\s*SELECT\b/i.test(code) && !/\b(INSERT|UPDATE|DELETE|SET|BEGIN|CALL)\b/i.test(code)) {
      expect(cli(dir, ['sql', '--no-psql', '-c', sql]).stdout).toBe(r.stdout);
      compared++;
    }
  }
  expect(failures).toBe(8);
  expect(compared).toBeGreaterThan(3);
});
