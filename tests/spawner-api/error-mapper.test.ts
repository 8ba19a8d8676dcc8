/**
 * The one error mapper: each domain error class gets its status and message, LimitExceededError a 429
 * with Retry-After, resource errors a path-free message with the reason kept for the log, unknown
 * errors a bare 500. The websocket upgrade answers through the same mapper (tests/tenancy/*).
 */
import { AdminError } from '../../src/admin';
import { DatabaseUnavailableError } from '../../src/db';
import { IdentityProviderUnavailableError, TokenRejectedError, UserDeactivatedError } from '../../src/identity';
import { QueueUnavailableError } from '../../src/jobs';
import {
  GatewayUserDeniedError,
  InvalidUsernameError,
  KernelLaunchError,
  KernelNotFoundError,
  KernelQuotaError,
  KernelRequestError,
  KernelspecForbiddenError,
  KernelspecNotFoundError,
  KernelspecResourceNotFoundError,
} from '../../src/kernels';
import { LimitExceededError, NameError, ProfileError } from '../../src/profiles';
import { errorBody, HttpError, toHttpAnswer } from '../../src/spawner-api';

test.each([
  [new HttpError(409, 'busy'), 409, 'busy'],
  [new AdminError('invalid', 'cpu_limit: bad'), 400, 'cpu_limit: bad'],
  [new AdminError('not-found', 'no experiment'), 404, 'no experiment'],
  [new AdminError('conflict', 'exists'), 409, 'exists'],
  [new KernelRequestError('env.X must be a string'), 400, 'env.X must be a string'],
  [new InvalidUsernameError('bad user'), 400, 'bad user'],
  [new NameError('bad name'), 400, 'bad name'],
  [new ProfileError('unknown profile'), 400, 'unknown profile'],
  [new TokenRejectedError('signature'), 401, 'invalid token: signature'],
  [new UserDeactivatedError("user 'a' is deactivated"), 403, "user 'a' is deactivated"],
  [new KernelQuotaError('not a member'), 403, 'not a member'],
  [new GatewayUserDeniedError('eve'), 403, expect.stringContaining("user 'eve' is not allowed")],
  [new KernelspecForbiddenError('spark', 'bob'), 403, 'User bob is not authorized to use kernel spec spark'],
  [new KernelNotFoundError('0000'), 404, 'Kernel does not exist: 0000'],
  [new KernelspecNotFoundError('python3'), 404, 'Kernel spec python3 not found'],
  [new KernelspecNotFoundError('../../bob'), 404, 'Kernel spec (not a kernel spec name) not found'],
  [new KernelLaunchError('image missing'), 500, 'Kernel launch failed: image missing'],
  [new DatabaseUnavailableError('refused'), 503, 'database unavailable: refused'],
  [new QueueUnavailableError('down'), 503, 'job queue unavailable: down'],
  [new IdentityProviderUnavailableError('IdP down'), 503, 'IdP down'],
  [Object.assign(new Error('too big'), { type: 'entity.too.large' }), 413, 'request body too large'],
  [Object.assign(new SyntaxError('Unexpected token'), { body: '{' }), 400, 'request body is not valid JSON'],
  [new Error('secret detail'), 500, 'internal error'],
])('%p → %i', (err, status, message) => {
  const answer = toHttpAnswer(err);
  expect(answer).toMatchObject({ status, message });
  expect(answer.headers).toBeUndefined();
});

test('LimitExceededError → 429 with Retry-After (whole seconds, at least 1)', () => {
  expect(toHttpAnswer(new LimitExceededError('3 launches in flight (kernels.max_launches_in_flight_per_user)', 'kernels.max_launches_in_flight_per_user', 2.2))).toEqual({
    status: 429,
    message: '3 launches in flight (kernels.max_launches_in_flight_per_user)',
    headers: { 'Retry-After': '3' },
  });
  expect(toHttpAnswer(new LimitExceededError('x', 'y', 0)).headers).toEqual({ 'Retry-After': '1' });
});

test('a resource error keeps its reason for the log only', () => {
  const answer = toHttpAnswer(new KernelspecResourceNotFoundError('python3', 'logo.png', '/homes/bob/x resolves outside /homes/alice'));
  expect(answer.status).toBe(404);
  expect(answer.message).toBe('kernel spec python3 has no such resource');
  expect(JSON.stringify(errorBody(answer))).not.toContain('/homes');
  expect(answer.logDetail).toEqual({ kernelspec: 'python3', resource: 'logo.png', detail: '/homes/bob/x resolves outside /homes/alice' });
});

test('errorBody is Enterprise Gateway’s {"reason", "message"}', () => {
  expect(errorBody({ status: 403, message: 'no' })).toEqual({ reason: 'Forbidden', message: 'no' });
  expect(errorBody({ status: 429, message: 'slow down' })).toEqual({ reason: 'Too Many Requests', message: 'slow down' });
});
