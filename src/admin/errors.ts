/**
 * Admin operation errors, independent of HTTP: the API maps `kind` to 400/404/409, the CLI prints the
 * message. Database constraint violations are translated into what the constraint means.
 */
export type AdminErrorKind = 'invalid' | 'not-found' | 'conflict';

export class AdminError extends Error {
  override readonly name = 'AdminError';
  constructor(
    readonly kind: AdminErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What each named constraint of the admin schema protects, in words an administrator can act on. */
export const CONSTRAINT_MEANINGS: Record<string, { kind: AdminErrorKind; message: string }> = {
  experiments_name_key: { kind: 'conflict', message: 'an experiment with this name already exists' },
  experiments_cpu_request_positive: { kind: 'invalid', message: 'cpu_request must be greater than 0' },
  experiments_cpu_limit_positive: { kind: 'invalid', message: 'cpu_limit must be greater than 0' },
  experiments_cpu_request_representable: { kind: 'invalid', message: 'cpu_request must be at least 0.001 cores (1m): less renders as 0m, which Kubernetes treats as no limit' },
  experiments_cpu_limit_representable: { kind: 'invalid', message: 'cpu_limit must be at least 0.001 cores (1m): less renders as 0m, which Kubernetes treats as no limit' },
  experiments_memory_request_positive: { kind: 'invalid', message: 'memory_request_mib must be greater than 0' },
  experiments_memory_limit_positive: { kind: 'invalid', message: 'memory_limit_mib must be greater than 0' },
  experiments_gpu_limit_not_negative: { kind: 'invalid', message: 'gpu_limit must not be negative' },
  experiments_cpu_request_within_limit: { kind: 'invalid', message: 'cpu_request must not exceed cpu_limit' },
  experiments_memory_request_within_limit: { kind: 'invalid', message: 'memory_request_mib must not exceed memory_limit_mib' },
  experiments_name_not_blank: { kind: 'invalid', message: 'experiment names must not be blank or start/end with spaces' },
  environments_name_key: { kind: 'conflict', message: 'an environment with this name is already registered (one experiment per environment)' },
  environments_name_not_blank: { kind: 'invalid', message: 'environment names must not be blank or start/end with spaces' },
  environments_experiment_id_fkey: { kind: 'conflict', message: 'the experiment still has environments (move or remove them first), or does not exist' },
  users_username_key: { kind: 'conflict', message: 'a user with this name already exists' },
  users_username_is_hub_name: {
    kind: 'invalid',
    message: "user names must not contain control characters or /, start or end with whitespace, be '.' or '..', or exceed 255 bytes",
  },
  users_email_looks_like_address: { kind: 'invalid', message: 'email must look like name@domain' },
  experiment_members_pkey: { kind: 'conflict', message: 'the user is already a member of this experiment' },
  experiment_members_source_known: { kind: 'invalid', message: "membership source must be 'sql' or 'oidc'" },
};

/** SQLSTATEs of data errors that are the caller's fault. */
const INVALID_DATA = new Set(['22001', '22003', '22P02', '23502', '23514']);

/** A database error as an AdminError when it is about the data; anything else is rethrown as is. */
export function translateDbError(err: unknown): unknown {
  const e = err as { code?: string; constraint?: string; column?: string; message?: string };
  if (!e || typeof e.code !== 'string' || !/^2[23]/.test(e.code)) return err;
  const meaning = e.constraint ? CONSTRAINT_MEANINGS[e.constraint] : undefined;
  if (meaning) return new AdminError(meaning.kind, `${meaning.message} (constraint ${e.constraint})`, { cause: err });
  if (e.code === '23502') return new AdminError('invalid', `${e.column ?? 'a value'} is required`, { cause: err });
  if (e.code === '23505') return new AdminError('conflict', `already exists (${e.constraint ?? 'unique'})`, { cause: err });
  if (e.code === '23503') return new AdminError('conflict', `still referenced or missing (${e.constraint ?? 'foreign key'})`, { cause: err });
  if (INVALID_DATA.has(e.code)) return new AdminError('invalid', e.message ?? 'invalid value', { cause: err });
  return err;
}

/** Runs `fn`, turning constraint violations into AdminErrors. */
export async function translatingDbErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw translateDbError(err);
  }
}
