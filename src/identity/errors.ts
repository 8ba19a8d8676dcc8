/** Why an OIDC token did not authenticate: the token is bad (401) or the IdP cannot be asked (503). */

export class TokenRejectedError extends Error {
  override readonly name = 'TokenRejectedError';
}

export class IdentityProviderUnavailableError extends Error {
  override readonly name = 'IdentityProviderUnavailableError';
}

/** A valid token of a user an administrator deactivated (users.active = false): 403. */
export class UserDeactivatedError extends Error {
  override readonly name = 'UserDeactivatedError';
}
