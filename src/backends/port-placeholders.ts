/** `{port}` / `{port:name}` placeholders in a workload's command and environment, shared by backends. */
import { PermanentBackendError } from './types';

/** Replaces `{port}` (the `default` port, else the first) and `{port:name}` in one string. */
export function substitutePorts(value: string, ports: Record<string, number>): string {
  return value.replace(/\{port(?::([A-Za-z0-9_.-]+))?\}/g, (_match, name: string | undefined) => {
    const port = name === undefined ? (ports.default ?? Object.values(ports)[0]) : ports[name];
    if (port === undefined) {
      throw new PermanentBackendError(
        name === undefined
          ? 'the command uses {port} but the spec declares no ports'
          : `the command uses {port:${name}} but the spec declares no port "${name}"`,
      );
    }
    return String(port);
  });
}
