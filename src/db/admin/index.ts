/** Repositories behind administration (src/admin), the IdP group sync and the identity checks. */
export * from './experiments';
export * from './environments';
export * from './users';
export * from './members';
export * from './usage';
export * from './audit-log';
