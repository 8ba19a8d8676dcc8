/** Public surface of src/identity: OIDC bearer tokens and the IdP group → experiment sync. */
export { resolveOidcSettings, type OidcSettings } from './settings';
export { createOidcIdentity, type OidcIdentity, type OidcPrincipal } from './oidc-identity';
export { createGroupSync, desiredExperiments, type GroupSync, type GroupSyncResult } from './group-sync';
export { IdentityProviderUnavailableError, TokenRejectedError, UserDeactivatedError } from './errors';
export { looksLikeJwt } from './jwt-verifier';
export { claimAt, claimValues } from './claims';
