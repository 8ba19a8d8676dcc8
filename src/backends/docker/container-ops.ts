/**
 * The engine calls on one container that need care: inspect (a missing container is `undefined`),
 * start (an already started one is fine, a start that can never succeed removes the dud), force-remove
 * (waiting out a removal already in flight), and copying a kernel's connection file in before start.
 */
import type Docker from 'dockerode';
import { PermanentBackendError } from '../types';
import { connectionArchive, ownerOf } from './connection-archive';
import { engineMessage, isConflict, isNotFound, statusOf, toBackendError } from './errors';

/** Engine messages of a start that can never succeed (command missing, not executable, bad mount). */
const PERMANENT_START = /executable file not found|no such file or directory|permission denied|not a directory|invalid argument/i;

export class ContainerOps {
  constructor(
    private readonly docker: Docker,
    private readonly endpoint: string,
  ) {}

  /** Inspect by name or id; undefined when there is no such container. */
  async inspect(nameOrId: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(nameOrId).inspect();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw toBackendError(err, `inspect container ${nameOrId}`, this.endpoint);
    }
  }

  /**
   * Copies the connection file into a created container (see connection-archive.ts). A failure
   * removes the container: started without its file, the kernel could only fail.
   */
  async copyConnectionFile(container: Docker.Container, name: string, user: string | undefined, json: string): Promise<void> {
    const owner = ownerOf(user);
    if (!owner) throw new PermanentBackendError(`container ${name} has no numeric user to own its connection file`);
    const archive = await connectionArchive(json, owner);
    try {
      await container.putArchive(archive.tar, { path: archive.extractTo });
    } catch (err) {
      await this.remove(container.id, name).catch(() => undefined);
      throw toBackendError(err, `copy the connection file into ${name}`, this.endpoint);
    }
  }

  async start(container: Docker.Container, name: string): Promise<void> {
    try {
      await container.start();
    } catch (err) {
      // Already started (a concurrent ensure got there first): Docker says 304, podman sometimes 500.
      if (statusOf(err) === 304 || /already (running|started)/i.test(engineMessage(err))) return;
      const message = engineMessage(err);
      if (statusOf(err) !== undefined && PERMANENT_START.test(message)) {
        await this.remove(container.id, name).catch(() => undefined); // a retry must not adopt a dud
        throw new PermanentBackendError(`container ${name} cannot start: ${message}`, { cause: err });
      }
      throw toBackendError(err, `start container ${name}`, this.endpoint);
    }
  }

  /** Force-removes a container; resolves once it is gone (also when it already was). */
  async remove(id: string, name: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.docker.getContainer(id).remove({ force: true, v: true });
        return;
      } catch (err) {
        if (isNotFound(err)) return;
        // 409: removal already in progress (another stop); wait for it to finish.
        if (isConflict(err) && attempt < 50) {
          await new Promise((r) => setTimeout(r, 200));
          if (!(await this.inspect(id))) return;
          continue;
        }
        throw toBackendError(err, `remove container ${name}`, this.endpoint);
      }
    }
  }
}
