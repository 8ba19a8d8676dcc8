/** kernel.json validation, resources and content types, user-name rules, in isolation. */
import { contentTypeOf, InvalidKernelJsonError, parseKernelJson, usernameProblem } from '../../src/kernels';
import { resourcesFromEntries } from '../../src/kernels/kernelspec';
import { isValidResourceName } from '../../src/kernels/names';

const parse = (v: unknown): ReturnType<typeof parseKernelJson> =>
  parseKernelJson(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)));

test('defaults as jupyter_client: language "", env {}, metadata {}, interrupt_mode "signal"; unknown keys dropped', () => {
  expect(parse({ argv: ['python'], display_name: 'P', extra: 1 }).spec).toEqual({
    argv: ['python'],
    display_name: 'P',
    language: '',
    env: {},
    metadata: {},
    interrupt_mode: 'signal',
  });
});

test.each([
  ['malformed JSON', '{"argv": ['],
  ['not an object', '"x"'],
  ['missing argv', { display_name: 'x' }],
  ['empty argv', { argv: [], display_name: 'x' }],
  ['empty argv[0]', { argv: [''], display_name: 'x' }],
  ['argv not strings', { argv: [1], display_name: 'x' }],
  ['missing display_name', { argv: ['p'] }],
  ['bad interrupt_mode', { argv: ['p'], display_name: 'x', interrupt_mode: 'kill' }],
  ['env not strings', { argv: ['p'], display_name: 'x', env: { A: 1 } }],
  ['metadata not an object', { argv: ['p'], display_name: 'x', metadata: [] }],
  [
    'bad spawngate.environment',
    { argv: ['p'], display_name: 'x', metadata: { spawngate: { environment: 5 } } },
  ],
])('%s is refused', (_label, value) => {
  expect(() => parse(value)).toThrow(InvalidKernelJsonError);
});

test('non-UTF-8 is refused; a UTF-8 BOM is tolerated', () => {
  expect(() => parseKernelJson(Buffer.from([0x7b, 0xff, 0x7d]))).toThrow(/UTF-8/);
  const withBom = Buffer.concat([
    Buffer.from([0xef, 0xbb, 0xbf]),
    Buffer.from(JSON.stringify({ argv: ['p'], display_name: 'é' })),
  ]);
  expect(parseKernelJson(withBom).spec.display_name).toBe('é');
});

test('resources are keyed as jupyter_server does', () => {
  expect(
    resourcesFromEntries(
      [
        'kernel.json',
        'logo-32x32.png',
        'logo-64x64.png',
        'logo-svg.svg',
        'kernel.js',
        'kernel.css',
        'other.txt',
        '.logo-x.png',
        'logo-bad name.png',
      ],
      isValidResourceName,
    ),
  ).toEqual({
    'kernel.css': 'kernel.css',
    'kernel.js': 'kernel.js',
    'logo-32x32': 'logo-32x32.png',
    'logo-64x64': 'logo-64x64.png',
    'logo-svg': 'logo-svg.svg',
  });
});

test('content types', () => {
  expect(contentTypeOf('logo-64x64.png')).toBe('image/png');
  expect(contentTypeOf('logo-svg.svg')).toBe('image/svg+xml');
  expect(contentTypeOf('kernel.js')).toMatch(/^text\/javascript/);
  expect(contentTypeOf('kernel.css')).toMatch(/^text\/css/);
  expect(contentTypeOf('kernel.json')).toBe('application/json');
  expect(contentTypeOf('page.html')).toBe('application/octet-stream');
});

test('resource names are single safe components', () => {
  for (const ok of ['logo-64x64.png', 'kernel.js', 'a_b.c']) expect(isValidResourceName(ok)).toBe(true);
  for (const bad of ['..', '.', '../x', 'a/b', '.hidden', '', 'a\\b', 'x\u0000', '%2e%2e'])
    expect(isValidResourceName(bad)).toBe(false);
});

test('user-name problems are explained', () => {
  expect(usernameProblem('alice')).toBeUndefined();
  expect(usernameProblem('a/b')).toMatch(/must not contain '\/'/);
  expect(usernameProblem('a'.repeat(256))).toMatch(/longer than 255 bytes/);
});
