/**
 * spawngate's own copy of the API server's rules (src/config/k8s-validation.ts), on the edges the
 * stand-in tests do not reach: quantities, version strings as clusters report them, name edge cases.
 */
import { k8sRules } from '../../../src/config';

test('the env-name rule from /version: relaxed from 1.32, minor versions as EKS/GKE spell them', () => {
  expect(k8sRules.envNameRuleFor('1', '31')).toBe('c-identifier');
  expect(k8sRules.envNameRuleFor('1', '31+')).toBe('c-identifier');
  expect(k8sRules.envNameRuleFor('1', '32+')).toBe('relaxed');
  expect(k8sRules.envNameRuleFor('1', '35')).toBe('relaxed');
  expect(k8sRules.envNameRuleFor('2', '0')).toBe('relaxed');
  expect(k8sRules.envNameRuleFor('', '')).toBe('c-identifier');
});

test.each([
  ['MY_VAR', 'c-identifier', true],
  ['my.env-name', 'c-identifier', true],
  ['1ABC', 'c-identifier', false],
  ['..x', 'c-identifier', false],
  ['.', 'c-identifier', false],
  ['MY VAR', 'c-identifier', false],
  ['MY VAR', 'relaxed', true],
  ['1ABC', 'relaxed', true],
  ['A=B', 'relaxed', false],
  ['é', 'relaxed', false],
  ['', 'relaxed', false],
  ['TAB\t', 'relaxed', false],
] as const)('env name %j under %s: %s', (name, rule, ok) => {
  expect(k8sRules.envNameProblem(name, rule) === undefined).toBe(ok);
});

test.each([
  ['2', true],
  ['1.5k', true],
  ['1.0005k', false],
  ['2000m', true],
  ['1500m', false],
  ['1.5Ki', true],
  ['1.3Ki', false],
  ['3e2', true],
  ['0.5', false],
  ['abc', false],
])('quantity %j is a whole number: %s', (q, whole) => {
  expect(k8sRules.isIntegerQuantity(q)).toBe(whole);
});

test('qualified names, label values, IANA service names and Secret keys at their edges', () => {
  expect(k8sRules.qualifiedNameProblem('example.com/name')).toBeUndefined();
  expect(k8sRules.qualifiedNameProblem('/name')).toMatch(/prefix .* must not be empty/);
  expect(k8sRules.qualifiedNameProblem(`${'a'.repeat(64)}`)).toMatch(/at most 63/);
  expect(k8sRules.qualifiedNameProblem('Example.com/x')).toMatch(/DNS-1123 subdomain/);
  expect(k8sRules.labelValueProblem('')).toBeUndefined();
  expect(k8sRules.labelValueProblem('-x')).toMatch(/start and end/);
  expect(['http', 'a-1', 'x'.repeat(15)].every(k8sRules.isIanaSvcName)).toBe(true);
  expect(['', '123', 'a--b', '-a', 'A', 'x'.repeat(16)].some(k8sRules.isIanaSvcName)).toBe(false);
  expect(k8sRules.secretKeyProblem('connection.json')).toBeUndefined();
  expect(k8sRules.secretKeyProblem('..data')).toMatch(/must not start with '\.\.'/);
});

test('extraResourceLimits: quantities valid and not negative, extended ones whole, names standard or qualified', () => {
  expect(k8sRules.extraResourcesProblems('x', { 'nvidia.com/gpu': '1', 'ephemeral-storage': '1.5Gi', 'hugepages-2Mi': '100Mi' })).toEqual([]);
  expect(k8sRules.extraResourcesProblems('x', { 'nvidia.com/gpu': '-1' })).toEqual(['x.nvidia.com/gpu: "-1" is not a non-negative Kubernetes quantity']);
  expect(k8sRules.extraResourcesProblems('x', { 'nvidia.com/gpu': 'lots' })[0]).toMatch(/not a non-negative Kubernetes quantity/);
  expect(k8sRules.extraResourcesProblems('x', { cpu: '2' })[0]).toMatch(/set CPU and memory in the profile's resources/);
});
