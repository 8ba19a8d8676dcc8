/** DESIGN §4: the administrator's SQL runs verbatim on both engines, and the CHECK constraints hold. */
import { migrate, type Db } from '../../src/db';
import { ENGINE_START_TIMEOUT_MS, ADMIN_EXAMPLE, engines, rejectionOf, type TestEngine } from './helpers';

describe.each(engines)('admin SQL on %s', (_name, create) => {
  let engine: TestEngine;
  let db: Db;
  beforeAll(async () => {
    engine = await create();
    db = engine.db;
    await migrate(db);
  }, ENGINE_START_TIMEOUT_MS);
  afterAll(() => engine.close());

  test('the DESIGN §4 example runs verbatim, statement by statement as psql would', async () => {
    await db
      .tx(async (q) => {
        for (const statement of ADMIN_EXAMPLE.split(';')
          .map((s) => s.trim())
          .filter(Boolean))
          await q.query(statement);
        const rows = await q.query(
          `SELECT u.username, u.email, u.active AS user_active, e.name, e.cpu_request, e.cpu_limit, e.memory_request_mib,
                e.memory_limit_mib, e.gpu_limit, e.active AS experiment_active, env.name AS environment
           FROM users u JOIN experiment_members m ON m.user_id = u.id JOIN experiments e ON e.id = m.experiment_id
           JOIN environments env ON env.experiment_id = e.id`,
        );
        expect(rows).toEqual([
          {
            username: 'alice',
            email: null,
            user_active: true,
            name: 'genomics',
            cpu_request: '0.5',
            cpu_limit: '2',
            memory_request_mib: 512,
            memory_limit_mib: 4096,
            gpu_limit: 0,
            experiment_active: true,
            environment: 'tf',
          },
        ]);
        throw new Error('rollback'); // leave the database empty for the next test
      })
      .catch((err: Error) => {
        if (err.message !== 'rollback') throw err;
      });
  });

  test('the DESIGN §4 example runs verbatim as one script', async () => {
    await db.query(ADMIN_EXAMPLE);
    expect(await db.query('SELECT count(*) AS n FROM experiment_members')).toEqual([{ n: 1 }]);
  });

  const insertExperiment = (
    name: string,
    cpuReq: number,
    cpuLim: number,
    memReq: number,
    memLim: number,
    gpu = 0,
  ) =>
    db.query(
      `INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [name, cpuReq, cpuLim, memReq, memLim, gpu],
    );

  test.each([
    ['cpu request above limit', [4, 2, 512, 1024, 0], 'experiments_cpu_request_within_limit'],
    ['memory request above limit', [1, 2, 2048, 1024, 0], 'experiments_memory_request_within_limit'],
    ['zero cpu request', [0, 2, 512, 1024, 0], 'experiments_cpu_request_positive'],
    ['negative cpu request', [-1, 2, 512, 1024, 0], 'experiments_cpu_request_positive'],
    ['zero cpu limit (request too)', [0, 0, 512, 1024, 0], /^experiments_cpu_(request|limit)_positive$/],
    ['zero memory request', [1, 2, 0, 1024, 0], 'experiments_memory_request_positive'],
    ['negative memory request', [1, 2, -512, 1024, 0], 'experiments_memory_request_positive'],
    [
      'negative memory limit (request too)',
      [1, 2, -2048, -1024, 0],
      /^experiments_memory_(request|limit)_positive$/,
    ],
    ['negative gpu limit', [1, 2, 512, 1024, -1], 'experiments_gpu_limit_not_negative'],
  ] as [string, number[], string | RegExp][])(
    'CHECK rejects %s, naming the constraint',
    async (label, [cr, cl, mr, ml, gpu], constraint) => {
      const err = await rejectionOf(insertExperiment(`bad ${label}`, cr!, cl!, mr!, ml!, gpu));
      expect(err.code).toBe('23514');
      // Several failing CHECKs: Postgres names the first it evaluates.
      expect(err.constraint).toMatch(constraint);
      expect(err.message).toContain(`"${String(err.constraint)}"`);
    },
  );

  test('an UPDATE that breaks a limit is rejected too', async () => {
    await insertExperiment('tight', 1, 2, 512, 1024);
    const err = await rejectionOf(db.query("UPDATE experiments SET cpu_limit = 0.5 WHERE name = 'tight'"));
    expect(err.message).toContain('experiments_cpu_request_within_limit');
  });

  test('request equal to limit is allowed', async () => {
    await expect(insertExperiment('exact', 2, 2, 1024, 1024, 1)).resolves.toEqual([]);
  });
});
