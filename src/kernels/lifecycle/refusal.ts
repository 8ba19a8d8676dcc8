/** Which refusal reason (src/metrics REFUSAL_REASONS) a failed kernel start counts as, if it was a refusal at all. */
import type { RefusalReason } from '../../metrics';
import { LimitExceededError } from '../../profiles';
import { GatewayUserDeniedError, KernelspecForbiddenError } from '../errors';
import { KernelQuotaError } from './errors';

export function kernelRefusalOf(err: unknown): { reason: RefusalReason; limit: string } | undefined {
  if (err instanceof KernelQuotaError) return { reason: err.reason, limit: '' };
  if (err instanceof LimitExceededError) return { reason: 'fair_share', limit: err.limit };
  if (err instanceof KernelspecForbiddenError) return { reason: 'kernelspec_forbidden', limit: '' };
  if (err instanceof GatewayUserDeniedError) return { reason: 'user_denied', limit: '' };
  return undefined;
}
