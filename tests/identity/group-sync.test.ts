/** The group → experiment sync on the embedded database (PGlite): mapping, unknown experiments, the cache. */
import { migrate, type Db } from '../../src/db';
import { createGroupSync, desiredExperiments } from '../../src/identity';
import { ENGINE_START_TIMEOUT_MS, captureLogger, createTestPglite } from '../db/helpers';

let db: Db;
beforeAll(async () => {
  db = await createTestPglite();
  await migrate(db);
  await db.query(`INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib)
                  VALUES ('genomics', 1, 1, 1, 1), ('imaging', 1, 1, 1, 1)`);
}, ENGINE_START_TIMEOUT_MS);
afterAll(() => db.close());

const mapping = new Map([
  ['lab-a', ['genomics']],
  ['lab-b', ['imaging', 'retired']],
]);

test('desired experiments: the union of the mapped groups, sorted, unmapped groups ignored', () => {
  expect(desiredExperiments(mapping, ['lab-b', 'lab-a', 'lab-b', 'unrelated'])).toEqual(['genomics', 'imaging', 'retired']);
  expect(desiredExperiments(mapping, [])).toEqual([]);
});

test('sync adds and removes, reports experiments that do not exist, and caches an unchanged set', async () => {
  const logs = captureLogger();
  const sync = createGroupSync({ db, logger: logs.logger, mapping, cacheSeconds: 3600 });
  expect(await sync.sync('dana', ['lab-b'])).toEqual({ added: ['imaging'], removed: [], unknown: ['retired'] });
  expect(logs.records.find((r) => r.level === 'warn')).toMatchObject({ experiments: ['retired'] });
  expect(await sync.sync('dana', ['lab-b'])).toBeUndefined(); // cached: no database work
  expect(await sync.sync('dana', ['lab-a'])).toEqual({ added: ['genomics'], removed: ['imaging'], unknown: [] });
  // Drift (an administrator removed the synced row) is repaired once the cache entry is forgotten.
  await db.query("DELETE FROM experiment_members WHERE source = 'oidc'");
  expect(await sync.sync('dana', ['lab-a'])).toBeUndefined();
  sync.forget('dana');
  expect(await sync.sync('dana', ['lab-a'])).toEqual({ added: ['genomics'], removed: [], unknown: [] });
  expect(await db.query("SELECT source FROM memberships WHERE username = 'dana'")).toEqual([{ source: 'oidc' }]);
});
