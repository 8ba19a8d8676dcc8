/**
 * A clean clone installs with `npm ci` on any platform: the lock file lists every platform's optional
 * packages (so it was not regenerated on one platform by accident), and no dependency's install script
 * is left unreviewed in package.json's `allowScripts`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

jest.setTimeout(120_000);

const REPO = path.resolve(__dirname, '../..');
interface LockEntry {
  version?: string;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
}
const lock = JSON.parse(readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };

/** Optional dependencies of a lock entry that have no entry of their own in the lock file. */
function missingOptionals(where: string): string[] {
  const entry = lock.packages[where];
  if (!entry) throw new Error(`package-lock.json has no ${where}`);
  return Object.keys(entry.optionalDependencies ?? {}).filter((dep) => {
    // npm nests a package beside its dependent when versions clash, else hoists it to the top.
    const nested = `${where}/node_modules/${dep}`;
    return !lock.packages[nested] && !lock.packages[`node_modules/${dep}`];
  });
}

test("the lock file has @swc/core's platform packages for every platform, not just this one", () => {
  const optionals = Object.keys(lock.packages['node_modules/@swc/core']?.optionalDependencies ?? {});
  expect(optionals).toEqual(expect.arrayContaining(['@swc/core-darwin-arm64', '@swc/core-linux-x64-gnu', '@swc/core-win32-x64-msvc']));
  expect(missingOptionals('node_modules/@swc/core')).toEqual([]);
  const platforms = new Set(optionals.map((d) => lock.packages[`node_modules/${d}`]?.os?.join(',')));
  expect([...platforms].sort()).toEqual(expect.arrayContaining(['darwin', 'linux', 'win32']));
});

test('every optional dependency anywhere in the lock file has its own entry (npm ci refuses the lock otherwise)', () => {
  const missing = Object.keys(lock.packages)
    .filter((where) => where.startsWith('node_modules/'))
    .flatMap((where) => missingOptionals(where).map((dep) => `${where} → ${dep}`));
  expect(missing).toEqual([]);
});

function unreviewedInstallScripts(dir: string): string[] {
  const out = execFileSync('npm', ['install-scripts', 'ls', '--json'], { cwd: dir, encoding: 'utf8' });
  return (JSON.parse(out) as { allowScripts: { name: string }[] }).allowScripts.map((p) => p.name);
}

test('no installed package has an install script that package.json does not review (allowScripts)', () => {
  expect(unreviewedInstallScripts(REPO)).toEqual([]);
});

test('the review check sees a package whose entry is removed from allowScripts (so the check above means something)', () => {
  expect(pkg.allowScripts).toHaveProperty('zeromq');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-npm-'));
  const trimmed = { ...pkg, allowScripts: { ...pkg.allowScripts } };
  delete trimmed.allowScripts.zeromq;
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(trimmed, null, 2));
  writeFileSync(path.join(dir, 'package-lock.json'), readFileSync(path.join(REPO, 'package-lock.json')));
  symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  expect(unreviewedInstallScripts(dir)).toEqual(['zeromq']);
});
