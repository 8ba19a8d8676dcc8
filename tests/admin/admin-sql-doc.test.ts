/**
 * docs/admin-sql.md stays true: every ```sql block runs, in order, on one session against a fresh
 * migrated Postgres, as psql would run it. Blocks marked `-- expect error: <constraint>` must fail naming
 * that constraint; titled queries (first line `-- <title>`) must return the rows listed here.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { migrate } from '../../src/db';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { insertKernel } from './helpers';

const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'admin-sql.md'), 'utf8');
const blocks = [...doc.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());

const expected: Record<string, Record<string, unknown>[]> = {
  'effective limits of alice': [
    { environment: 'tf', experiment: 'genomics', status: 'granted', cpu_request: '0.5', cpu_limit: '2', memory_request_mib: 512, memory_limit_mib: 4096, gpu_limit: 0 },
    { environment: 'torch', experiment: 'imaging', status: 'granted', cpu_request: '2', cpu_limit: '8', memory_request_mib: 8192, memory_limit_mib: 32768, gpu_limit: 1 },
  ],
  'who may launch in tf': [
    { username: 'alice', status: 'granted' },
    { username: 'bob', status: 'refused: not a member' },
  ],
  'members of imaging': [
    { username: 'alice', source: 'sql' },
    { username: 'bob', source: 'sql' },
  ],
  'after deactivating': [
    { username: 'alice', environment: 'tf', status: 'granted' },
    { username: 'alice', environment: 'torch', status: 'refused: experiment inactive' },
    { username: 'bob', environment: 'tf', status: 'refused: not a member' },
    { username: 'bob', environment: 'torch', status: 'refused: experiment inactive' },
  ],
  usage: [
    { experiment: 'genomics', kernels: 1, cpu_request: '0.5', cpu_limit: '4', memory_limit_mib: '8192', gpu_limit: 0 },
    { experiment: 'imaging', kernels: 0, cpu_request: '0', cpu_limit: '0', memory_limit_mib: '0', gpu_limit: 0 },
  ],
  'recent changes to genomics': [
    { actor: 'sql:jdoe', action: 'experiments.insert', old_cpu_limit: null, new_cpu_limit: '2' },
    { actor: 'sql:jdoe', action: 'experiments.update', old_cpu_limit: '2', new_cpu_limit: '4' },
  ],
};

let db: TestPostgres;
let client: pg.Client;

beforeAll(async () => {
  db = await createTestPostgres();
  await migrate(db.db);
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
  await db?.drop();
});

/** Rows of the last statement of a (possibly multi-statement) script. */
async function run(sql: string): Promise<Record<string, unknown>[]> {
  const res = (await client.query(sql)) as unknown as pg.QueryResult | pg.QueryResult[];
  const last = Array.isArray(res) ? res[res.length - 1]! : res;
  return last.rows as Record<string, unknown>[];
}

test('the document has the examples this test knows about', () => {
  expect(blocks.length).toBeGreaterThan(20);
  const titles = blocks.map((b) => /^-- (.+)$/m.exec(b.split('\n')[0]!)?.[1]);
  for (const title of Object.keys(expected)) expect(titles).toContain(title);
});

test('every SQL example runs in order with the documented outcome', async () => {
  const seen: string[] = [];
  for (const [i, sql] of blocks.entries()) {
    const title = /^-- (.+)$/.exec(sql.split('\n')[0]!)?.[1];
    const failure = title?.startsWith('expect error: ') ? title.slice('expect error: '.length) : undefined;
    if (title === 'usage') {
      // A running kernel, as the gateway would have recorded it, so usage has something to add up.
      await insertKernel(db.db, { experiment: 'genomics', username: 'alice', state: 'running', limits: { cpu_request: 0.5, cpu_limit: 4, memory_request_mib: 512, memory_limit_mib: 8192, gpu_limit: 0 } });
    }
    if (failure) {
      await expect(run(sql)).rejects.toMatchObject({ constraint: failure });
      seen.push(`${i}: failed as documented`);
      continue;
    }
    let rows: Record<string, unknown>[];
    try {
      rows = await run(sql);
    } catch (err) {
      throw new Error(`example ${i} failed:\n${sql}\n→ ${(err as Error).message}`, { cause: err });
    }
    if (title && expected[title]) {
      expect({ title, rows }).toEqual({ title, rows: expected[title] });
      seen.push(`${i}: ${title}`);
    }
  }
  expect(seen.filter((s) => s.endsWith('failed as documented'))).toHaveLength(8);
  expect(seen.length).toBe(8 + Object.keys(expected).length);
});
