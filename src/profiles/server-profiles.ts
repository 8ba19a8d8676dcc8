/**
 * Server profiles: which ones a user may choose, and turning the hub's `user_options` into the profile
 * to launch. Like KubeSpawner's `profile_list`, with one built-in profile when none is configured.
 */
import { z } from 'zod';
import type { Profile } from '../config';

export class ProfileError extends Error {
  override readonly name = 'ProfileError';
}

/** What the hub may send as `user_options`. Unknown keys are refused so typos do not pass silently. */
export const userOptionsSchema = z
  .object({
    profile: z.string().min(1).max(63).optional().describe('slug of the chosen profile'),
  })
  .strict();
export type UserOptions = z.infer<typeof userOptionsSchema>;

export const BUILTIN_PROFILE: Profile = {
  slug: 'default',
  display_name: 'Default server',
  description: 'The standard single-user server.',
  default: true,
  resources: {},
  env: {},
};

export interface ProfileCatalog {
  /** Profiles this user may choose, default first. */
  forUser(username: string): Profile[];
  /** Validates user options and returns the profile to launch. @throws ProfileError with a message for people */
  resolve(username: string, userOptions: unknown): { profile: Profile; options: UserOptions };
}

export function createProfileCatalog(profiles: Profile[]): ProfileCatalog {
  const all = profiles.length > 0 ? profiles : [BUILTIN_PROFILE];
  const visible = (username: string): Profile[] =>
    all.filter((p) => p.allowed_users === undefined || p.allowed_users.includes(username));

  return {
    forUser(username) {
      const list = visible(username);
      const def = list.find((p) => p.default) ?? list[0];
      return def ? [def, ...list.filter((p) => p !== def)] : [];
    },
    resolve(username, raw) {
      const parsed = userOptionsSchema.safeParse(raw ?? {});
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const what =
          issue?.code === 'unrecognized_keys'
            ? `unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`
            : `${issue?.path.join('.') || 'user_options'}: ${issue?.message}`;
        throw new ProfileError(`invalid user_options: ${what}; allowed: 'profile'`);
      }
      const list = this.forUser(username);
      if (list.length === 0) throw new ProfileError(`no server profile is available to user '${username}'`);
      const slug = parsed.data.profile;
      if (slug === undefined) return { profile: list[0]!, options: parsed.data };
      const profile = list.find((p) => p.slug === slug);
      if (!profile) {
        throw new ProfileError(
          `unknown profile '${slug}'; available: ${list.map((p) => `'${p.slug}'`).join(', ')}`,
        );
      }
      return { profile, options: parsed.data };
    },
  };
}
