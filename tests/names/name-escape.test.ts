/**
 * Backend names for any user name: reversible escaping into `[a-z0-9-]` (src/backends/support/name-escape.ts),
 * the bounded slug used for workload names and Kubernetes label values, and the server workload name.
 */
import { createHash } from 'node:crypto';
import { escapeName, isHashedSlug, isValidWorkloadName, labelValueFor, nameSlug, unescapeName } from '../../src/backends';
import { serverWorkloadName } from '../../src/profiles';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const names = [
  'alice',
  'Alice',
  'ünïcode.user',
  'Ünïcode.User',
  'zoë-łódź',
  'a b',
  'a-b',
  'a_b',
  'a.b',
  "o'neil",
  'a-20b',
  'alice@example.org',
  '张伟',
  '👩‍🔬',
  '-',
  '0',
  'x'.repeat(255),
  'é'.repeat(127),
  'a%41',
  'aA',
];

test('escaping keeps [a-z0-9], writes every other UTF-8 byte as -xx, and round-trips', () => {
  expect(escapeName('alice')).toBe('alice');
  expect(escapeName('Alice')).toBe('-41lice');
  expect(escapeName('a b')).toBe('a-20b');
  expect(escapeName('a-b')).toBe('a-2db');
  expect(escapeName('ünïcode.user')).toBe('-c3-bcn-c3-afcode-2euser');
  for (const name of names) {
    const escaped = escapeName(name);
    expect(escaped).toMatch(/^(?:[a-z0-9]|-[0-9a-f]{2})*$/);
    expect(unescapeName(escaped)).toBe(name);
  }
});

test('unescaping refuses what escaping cannot produce (second spellings, invalid UTF-8, stray dashes)', () => {
  for (const bad of ['-61', 'a-', 'a-2', 'a--20', '-c3', '-ff', 'A', 'a-2G']) expect(unescapeName(bad)).toBeUndefined();
});

test('slugs are DNS labels and label values within their length, direct when they fit, hashed otherwise', () => {
  for (const name of names) {
    for (const max of [16, 40, 56, 63]) {
      const slug = nameSlug(name, max);
      expect([name, max, slug.length <= max]).toEqual([name, max, true]);
      expect(slug).toMatch(DNS_LABEL);
      expect(slug).toMatch(LABEL_VALUE);
      if (!isHashedSlug(slug)) expect(unescapeName(slug)).toBe(name);
    }
  }
  expect(nameSlug('alice')).toBe('alice');
  expect(nameSlug('a b')).toBe('a-20b');
  // Starts with an escape: hashed, its head kept readable.
  const hash = createHash('sha256').update('Ünïcode.User').digest('hex').slice(0, 10);
  expect(nameSlug('Ünïcode.User')).toBe(`c3-9cn-c3-afcode-2e-55ser--${hash}`);
  expect(nameSlug('x'.repeat(100))).toMatch(/^x{51}--[0-9a-f]{10}$/);
  // A cut never leaves half an escape.
  expect(nameSlug('é'.repeat(30), 30)).toMatch(/^c3-a9(-c3-a9)*(-c3)?--[0-9a-f]{10}$/);
});

test('two names that differ only in characters that are escaped get distinct slugs (no lossy collapse)', () => {
  const similar = ['a b', 'a-b', 'a_b', 'a.b', 'a@b', "a'b", 'a-20b', 'a-2db', 'ab', 'AB', 'Ab', 'ünïcode.user', 'Ünïcode.User', 'unicode.user', 'n-code.user'];
  for (const max of [16, 63]) {
    const slugs = similar.map((n) => nameSlug(n, max));
    expect(new Set(slugs).size).toBe(similar.length);
  }
  const long = Array.from({ length: 50 }, (_, i) => `${'ü'.repeat(40)}${i}`);
  expect(new Set(long.map((n) => nameSlug(n))).size).toBe(50);
  // Every name through the same function, including ones already in the safe alphabet: no overlap.
  const pool = [...similar, ...names, ...long];
  expect(new Set(pool.map((n) => nameSlug(n))).size).toBe(new Set(pool).size);
});

test('server workload names: sg-srv-<slug of user or user/server>, valid workload names, distinct per server', () => {
  expect(serverWorkloadName('alice', '')).toBe('sg-srv-alice');
  expect(serverWorkloadName('alice', 'work')).toBe('sg-srv-alice-2fwork');
  expect(serverWorkloadName('a b', '')).toBe('sg-srv-a-20b');
  const all = new Set<string>();
  for (const user of names) {
    for (const server of ['', 'work', 'my server', 'x'.repeat(200)]) {
      const w = serverWorkloadName(user, server);
      expect(isValidWorkloadName(w)).toBe(true);
      all.add(w);
    }
  }
  expect(all.size).toBe(names.length * 4);
  // The user/server split is unambiguous: neither part may contain '/'.
  expect(serverWorkloadName('a', 'b c')).not.toBe(serverWorkloadName('a b', 'c'));
});

test('kubernetes label values: the user label is always escaped, other labels keep valid values', () => {
  expect(labelValueFor('spawngate/user', 'alice')).toBe('alice');
  expect(labelValueFor('spawngate/user', 'a b')).toBe('a-20b');
  // A valid-looking user name does not pass unchanged where it could equal another user's escape.
  expect(labelValueFor('spawngate/user', 'a-20b')).toBe('a-2d20b');
  expect(labelValueFor('spawngate/user', 'Alice')).not.toBe(labelValueFor('spawngate/user', 'alice'));
  expect(labelValueFor('app.kubernetes.io/instance', 'my-hub')).toBe('my-hub');
  expect(labelValueFor('spawngate/experiment', 'Genomics 2026')).toMatch(/^Genomics-2026-[0-9a-f]{8}$/);
  for (const v of ['', 'a b', 'Ünïcode.User', 'x'.repeat(80)]) expect(labelValueFor('other', v)).toMatch(LABEL_VALUE);
});
