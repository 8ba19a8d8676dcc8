/**
 * The one user-name rule (src/profiles/names.ts): every name JupyterHub 3.0–5.x accepts
 * (`Authenticator.validate_username`: not empty, no `/`, no surrounding whitespace), except names that
 * cannot be one path component. Server names: JupyterHub's named-server rule (no `/`) and the same limits.
 */
import { serverNameProblem, usernameProblem, validateServerName, validateUsername, NameError } from '../../src/profiles';

const accepted = [
  'alice',
  'ünïcode.user',
  'Ünïcode.User',
  'zoë-łódź',
  'a b',
  "o'neil",
  'alice@example.org',
  'a+b',
  '张伟',
  'Δημήτρης',
  'محمد',
  'x'.repeat(255),
  'é'.repeat(127), // 254 bytes
  '50%off',
  '%2e%2e',
  'a\\b',
  'a&b#c?d=e',
  '-leading-dash',
  '.hidden',
  '...',
  'a..b',
  'tab\u00a0inside', // no-break space inside the name is not at an edge
  '👩‍🔬', // ZWJ sequence (format character inside)
  '"quoted" <tag>',
];

const refused: [string, RegExp][] = [
  ['', /empty/],
  ['.', /'\.' or '\.\.'/],
  ['..', /'\.' or '\.\.'/],
  ['a/b', /'\/'/],
  ['/', /'\/'/],
  ['a\0b', /control/],
  ['a\nb', /control/],
  ['a\tb', /control/],
  ['a\u007fb', /control/],
  ['a\u0085b', /control/],
  [' alice', /whitespace/],
  ['alice ', /whitespace/],
  ['\u3000alice', /whitespace/],
  ['alice\u00a0', /whitespace/],
  ['x'.repeat(256), /255 bytes/],
  ['é'.repeat(128), /255 bytes/],
  ['a\ud800b', /valid Unicode/],
];

describe('user names', () => {
  test.each(accepted)('accepted as JupyterHub accepts it: %j', (name) => {
    expect(usernameProblem(name)).toBeUndefined();
    expect(validateUsername(name)).toBe(name);
  });

  test.each(refused)('refused with a reason: %j', (name, reason) => {
    expect(usernameProblem(name)).toMatch(reason);
    expect(() => validateUsername(name)).toThrow(NameError);
    expect(() => validateUsername(name)).toThrow(/^invalid user name /);
  });

  test('a refused long name is shown shortened in the message, never in full', () => {
    const long = 'ü'.repeat(300);
    const message = (() => {
      try {
        validateUsername(long);
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    })();
    expect(message).toMatch(/…/);
    expect(message.length).toBeLessThan(120);
  });
});

describe('server names', () => {
  test.each(['', 'work', 'my server', "o'neil's", 'ünï', ' padded ', 'x'.repeat(255)])('accepted: %j', (name) => {
    expect(serverNameProblem(name)).toBeUndefined();
    expect(validateServerName(name)).toBe(name);
  });

  test.each([
    ['a/b', /'\/'/],
    ['.', /'\.' or '\.\.'/],
    ['..', /'\.' or '\.\.'/],
    ['a\u0000', /control/],
    ['x'.repeat(256), /255 bytes/],
  ])('refused: %j', (name, reason) => {
    expect(serverNameProblem(name)).toMatch(reason);
    expect(() => validateServerName(name)).toThrow(/^invalid server name /);
  });
});
