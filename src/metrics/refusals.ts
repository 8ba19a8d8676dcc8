/**
 * The closed set of reasons `spawngate_launches_refused_total` counts, so its cardinality is fixed and
 * documented (docs/metrics.md). The parts that refuse (kernels, servers) map their errors onto these.
 */
export const REFUSAL_REASONS = [
  /** The user is not in experiment_members for the environment's experiment. */
  'not_member',
  /** The user is a member but deactivated (users.active = false). */
  'inactive_user',
  /** The environment's experiment is deactivated. */
  'inactive_experiment',
  /** The environment is in no experiment and the policy denies it (or names a missing default profile). */
  'unregistered_environment',
  /** A fair-share limit (too many kernels or servers, too many launches in flight); `limit` names the setting. */
  'fair_share',
  /** The kernelspec's authorized_users / unauthorized_users exclude the user. */
  'kernelspec_forbidden',
  /** kernels.allowed_users / denied_users keep the user out of the gateway. */
  'user_denied',
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];
