/** Reading the audit log: input validated here, rows from src/db. */
import { selectAudit, type Queryable } from '../db';
import { auditQuerySchema, parseInput, type AuditEntry } from './schemas';

export function listAudit(q: Queryable, input: unknown): Promise<AuditEntry[]> {
  return selectAudit(q, parseInput(auditQuerySchema, input));
}
