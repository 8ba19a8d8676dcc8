/**
 * Names that reach backends: user and server names are validated at the edge, and workload names are
 * derived deterministically so a retried launch finds the workload it created before.
 */
import { createHash } from 'node:crypto';

export class NameError extends Error {
  override readonly name = 'NameError';
}

// JupyterHub user names: letters (any script), digits and . _ @ + - ; no separators or control characters.
const USERNAME = /^[\p{L}\p{N}][\p{L}\p{N}._@+-]{0,127}$/u;
const SERVERNAME = /^[\p{L}\p{N}._@+-]{0,255}$/u;

export function validateUsername(name: string): string {
  if (!USERNAME.test(name) || name.includes('..')) {
    throw new NameError(`invalid user name '${name.slice(0, 64)}': use letters, digits and . _ @ + - (at most 128)`);
  }
  return name;
}

export function validateServerName(name: string): string {
  if (!SERVERNAME.test(name) || name.includes('..')) {
    throw new NameError(`invalid server name '${name.slice(0, 64)}': use letters, digits and . _ @ + -`);
  }
  return name;
}

/** `sg-srv-<readable part>-<10 hex of sha256(user/server)>`, a DNS label of at most 63 characters. */
export function serverWorkloadName(username: string, serverName: string): string {
  const hash = createHash('sha256').update(`${username}/${serverName}`).digest('hex').slice(0, 10);
  const readable = `${username}${serverName ? `-${serverName}` : ''}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return readable ? `sg-srv-${readable}-${hash}` : `sg-srv-${hash}`;
}
