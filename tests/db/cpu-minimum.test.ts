/**
 * Migration 018: a CPU quota below 1m (which a pod would get as `cpu: 0m`, no limit at all) is refused
 * by a database constraint on both engines; a database that already holds such a row still migrates,
 * and a launch under that row is refused with a message until an administrator raises it.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { migrate, type Db } from '../../src/db';
import { grantFor } from '../../src/kernels/lifecycle';
import { ENGINE_START_TIMEOUT_MS, ADMIN_EXAMPLE, engines, rejectionOf, type TestEngine } from './helpers';

const BUNDLED = path.join(__dirname, '..', '..', 'src', 'db', 'migrations');

/** The bundled migrations before 018, as a database made by an earlier spawngate has them. */
async function before018(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sg-h18r-migrations-'));
  for (const f of await fs.readdir(BUNDLED)) if (f.endsWith('.sql') && Number(f.slice(0, 3)) < 18) await fs.copyFile(path.join(BUNDLED, f), path.join(dir, f));
  return dir;
}

describe.each(engines)('experiments CPU at least 1m on %s', (_name, create) => {
  let engine: TestEngine;
  let db: Db;
  beforeEach(async () => {
    engine = await create();
    db = engine.db;
  }, ENGINE_START_TIMEOUT_MS);
  afterEach(() => engine.close());

  test('a database already holding a sub-millicore quota migrates; that row is kept and refused at launch', async () => {
    const dir = await before018();
    await migrate(db, { directory: dir });
    await db.query(ADMIN_EXAMPLE);
    await db.query(`INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('tiny', 0.0001, 0.0001, 64, 64)`);
    await db.query(`UPDATE environments SET experiment_id = (SELECT id FROM experiments WHERE name = 'tiny') WHERE name = 'tf'`);
    await db.query(`INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'tiny' AND u.username = 'alice'`);
    expect((await migrate(db)).map((m) => m.version)).toContain(18);
    expect(await db.query(`SELECT cpu_limit::text AS cpu FROM experiments WHERE name = 'tiny'`)).toEqual([{ cpu: '0.0001' }]);

    const config = loadConfig({ SPAWNGATE_DATA_DIR: dir });
    const err = await rejectionOf(grantFor(db, config, 'alice', 'tf', 'conda-env-tf-python3'));
    expect(err.name).toBe('KernelQuotaError');
    expect(err.message).toBe(
      "experiment 'tiny' (environment 'tf') has cpu_request 0.0001 / cpu_limit 0.0001 cores; both must be at least 0.001 (1m): ask an administrator to raise them",
    );
    // The administrator's fix is a plain UPDATE; then the launch is granted.
    await db.query(`UPDATE experiments SET cpu_request = 0.001, cpu_limit = 0.5 WHERE name = 'tiny'`);
    expect((await grantFor(db, config, 'alice', 'tf', 'conda-env-tf-python3')).limits).toMatchObject({ cpu_request: 0.001, cpu_limit: 0.5 });
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('new rows and updates below 1m are refused by named constraints; the DESIGN example still works', async () => {
    await migrate(db);
    await db.query(ADMIN_EXAMPLE);
    const insert = await rejectionOf(db.query(`INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('x', 0.0001, 1, 64, 64)`));
    expect(insert.message).toMatch(/experiments_cpu_request_representable/);
    const update = await rejectionOf(db.query(`UPDATE experiments SET cpu_limit = 0.0009, cpu_request = 0.0009 WHERE name = 'genomics'`));
    expect(update.message).toMatch(/experiments_cpu_(request|limit)_representable/);
    await db.query(`INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('smallest', 0.001, 0.001, 1, 1)`);
    expect(await db.query(`SELECT name FROM experiments ORDER BY name`)).toEqual([{ name: 'genomics' }, { name: 'smallest' }]);
  });
});
