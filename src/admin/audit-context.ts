/** The audit actor lives with the SQL in src/db; re-exported here for the admin operations' callers. */
export { withAuditActor, type AuditActor } from '../db';
