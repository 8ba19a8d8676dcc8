/**
 * Every progress event a server start reports, in one place and one voice: sentence case, what is
 * happening now, no trailing full stop, the same words on every backend — so the hub's progress bar
 * reads as one account whichever backend runs the server. Backends describe their own steps in their
 * own words; `backendStep` frames those the same way for all of them.
 */

/** Percent done at each stage of one attempt, in order; a retried attempt (port taken, busy backend) starts over. */
export const PROGRESS = {
  /** Recorded with the claim (src/db); the hub announces its own event at 0 too. */
  requested: 0,
  starting: 10,
  retrying: 20,
  backendStep: 40,
  answering: 50,
  done: 100,
} as const;

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** A backend's step, e.g. `Docker backend: Created container 1a2b3c4d5e6f`. */
export function backendStep(backend: string, detail: string): string {
  const text = detail.trim().replace(/\.+$/, '');
  return `${capitalize(backend)} backend: ${capitalize(text)}`;
}

export const progressText = {
  starting: (backend: string): string => `Starting the server on the ${backend} backend`,
  retryingBusy: (backend: string, why: string): string => `Retrying: the ${backend} backend is busy (${why.trim().replace(/\.+$/, '')})`,
  retryingPort: (): string => "Retrying on another port: the server's port was taken before it could listen",
  answering: (): string => 'Waiting for the server to answer',
  ready: (url?: string | null): string => (url ? `Server ready at ${url}` : 'Server ready'),
  stopRequested: (): string => 'Server stop requested',
  /** A stream that finds the server no longer pending without a final event (e.g. stopped meanwhile). */
  ended: (state: string): string => `Server ${state}`,
};
