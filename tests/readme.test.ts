/**
 * README and docs stay true: the configuration table is exactly what the schema renders, and every
 * relative link resolves inside the repository (a clone has nothing beside it).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { renderConfigDoc } from '../src/cli/config-doc';

test('README configuration table matches the zod schema (regenerate with `spawngate config-doc`)', () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const m = /<!-- config-doc:begin -->\n([\s\S]*?)\n<!-- config-doc:end -->/.exec(readme);
  expect(m).not.toBeNull();
  expect(m![1]!.trim()).toBe(renderConfigDoc().trim());
});

const REPO = path.join(__dirname, '..');
/** The sibling folder "shared" as a relative path, spelled so that this file does not contain it. */
const SIBLING = ['..', 'shared', ''].join('/');

/** Markdown files whose relative links must resolve inside the repository. */
function documents(): string[] {
  const docsDir = path.join(REPO, 'docs');
  const walk = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.md') ? [path.join(dir, e.name)] : []));
  return [path.join(REPO, 'README.md'), ...walk(docsDir)];
}

/** Link targets of a markdown text: inline `[text](target "title")`, images, and reference definitions; code is skipped. */
function linkTargets(markdown: string): string[] {
  const text = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  const inline = [...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const refs = [...text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/gm)].map((m) => m[1]!);
  return [...inline, ...refs];
}

/** Why a relative link from `file` is broken, or undefined when it resolves to a file inside the repository. */
function brokenLink(file: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) return undefined; // URL, or anchor in the same file
  const withoutAnchor = decodeURIComponent(target.split('#')[0]!.split('?')[0]!);
  const resolved = path.resolve(path.dirname(file), withoutAnchor);
  const rel = path.relative(REPO, resolved);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return 'points outside the repository';
  if (!fs.existsSync(resolved)) return 'does not exist';
  return undefined;
}

test('every relative link in README.md and docs/**/*.md resolves to a file inside the repository', () => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of documents()) {
    for (const target of linkTargets(fs.readFileSync(file, 'utf8'))) {
      checked++;
      const why = brokenLink(file, target);
      if (why) broken.push(`${path.relative(REPO, file)}: ${target} ${why}`);
    }
  }
  expect(broken).toEqual([]);
  expect(checked).toBeGreaterThan(20); // the parser finds the links (README alone has more)
});

test('the link check catches a link outside the repository, a missing file and a missing file behind an anchor', () => {
  const file = path.join(REPO, 'docs', 'example.md');
  const md = `See [design](../${SIBLING}DESIGN.md), [gone](nope.md#x), [ok](architecture.md#layout), [web](https://example.org), [top](#a).\n\n[ref]: ../README.md\n`;
  const found = linkTargets(md).map((t) => [t, brokenLink(file, t)]);
  expect(found).toEqual([
    [`../${SIBLING}DESIGN.md`, 'points outside the repository'],
    ['nope.md#x', 'does not exist'],
    ['architecture.md#layout', undefined],
    ['https://example.org', undefined],
    ['#a', undefined],
    ['../README.md', undefined],
  ]);
});

test('no tracked file refers to ../shared (a clone has nothing beside it)', () => {
  const r = spawnSync('git', ['grep', '-l', '-F', '-e', SIBLING, '--', '.', ':!package-lock.json'], { cwd: REPO, encoding: 'utf8' });
  expect(r.status === 0 || r.status === 1 ? '' : r.stderr).toBe(''); // 1: nothing found
  expect(r.stdout.split('\n').filter(Boolean)).toEqual([]);
});

test("docs/architecture.md's layout table names exactly the folders src/ has", () => {
  const doc = fs.readFileSync(path.join(REPO, 'docs', 'architecture.md'), 'utf8');
  const layout = /^## Layout\n([\s\S]*?)\n## /m.exec(doc)?.[1] ?? '';
  const named = new Set([...layout.matchAll(/`src\/([a-z0-9-]+)\/`/g)].map((m) => m[1]!));
  const actual = fs.readdirSync(path.join(REPO, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  expect([...named].sort()).toEqual(actual.sort());
});
