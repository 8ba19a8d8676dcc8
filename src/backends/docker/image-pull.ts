/**
 * Making sure a workload's image is present: inspect, else pull it with dockerode's
 * `modem.followProgress` (which splits the engine's JSON-lines stream), reporting each distinct
 * progress line. A registry's refusal is permanent; an unreachable daemon is transient.
 */
import type Docker from 'dockerode';
import { PermanentBackendError, TransientBackendError } from '../types';
import { engineMessage, isNotFound, statusOf, toBackendError } from './errors';

export interface ImagePullContext {
  docker: Docker;
  endpoint: string;
  /** `false`: a missing image is refused without asking a registry. */
  pull: boolean;
  log: { info: (message: string, meta?: Record<string, unknown>) => unknown };
}

interface PullProgress {
  status?: string;
  progress?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/** Resolves once `image` is present; `progress` receives human-readable steps. */
export async function ensureImage(ctx: ImagePullContext, image: string, name: string, progress: (message: string) => void): Promise<void> {
  try {
    await ctx.docker.getImage(image).inspect();
    return;
  } catch (err) {
    if (!isNotFound(err)) throw toBackendError(err, `inspect image ${image}`, ctx.endpoint);
  }
  if (!ctx.pull) throw new PermanentBackendError(`image ${image} is not present and pulling is disabled`);
  progress(`pulling image ${image}`);
  ctx.log.info('pulling image', { name, image });
  try {
    await pull(ctx, image, (message) => progress(`pull ${image}: ${message}`));
  } catch (err) {
    if (err instanceof TransientBackendError) throw err;
    throw new PermanentBackendError(`image ${image} is not present and cannot be pulled: ${engineMessage(err)}`, { cause: err });
  }
  try {
    await ctx.docker.getImage(image).inspect();
  } catch (err) {
    throw new PermanentBackendError(`image ${image} is still missing after pulling: ${engineMessage(err)}`, { cause: err });
  }
}

/** Runs a pull to completion; rejects with the stream's `error` if it reports one. */
async function pull(ctx: ImagePullContext, image: string, progress: (message: string) => void): Promise<void> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = (await ctx.docker.pull(image)) as NodeJS.ReadableStream;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code && statusOf(err) === undefined) throw toBackendError(err, `pull image ${image}`, ctx.endpoint);
    throw err;
  }
  let failure: string | undefined;
  let lastMessage = '';
  await new Promise<void>((resolve, reject) => {
    ctx.docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : failure ? reject(new Error(failure)) : resolve()),
      (obj: PullProgress) => {
        if (obj.error || obj.errorDetail?.message) {
          failure = obj.errorDetail?.message ?? obj.error;
          return;
        }
        const message = [obj.id, obj.status, obj.progress].filter(Boolean).join(' ').trim();
        if (message && message !== lastMessage) {
          lastMessage = message;
          progress(message);
        }
      },
    );
  });
}
