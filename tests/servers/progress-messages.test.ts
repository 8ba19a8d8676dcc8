/**
 * spawngate's progress events read in one voice whatever the backend: sentence case, no trailing full
 * stop, one line; backends' own step texts are framed the same way; the stages of one attempt are in order.
 */
import { PROGRESS, progressText } from '../../src/servers';
import { backendStep } from '../../src/servers/progress-messages';

const VOICE = /^[A-Z][^\n]*[^.\s]$/;

describe('progress messages', () => {
  test('every stage message is in the one voice', () => {
    const all = [
      progressText.starting('kubernetes'),
      progressText.retryingBusy('docker', 'connect ECONNREFUSED /run/podman.sock.'),
      progressText.retryingPort(),
      progressText.answering(),
      progressText.ready('http://10.0.3.7:8888'),
      progressText.ready(null),
      progressText.stopRequested(),
      progressText.ended('stopped'),
    ];
    for (const m of all) expect(m).toMatch(VOICE);
    expect(progressText.retryingBusy('docker', 'engine busy.')).toBe('Retrying: the docker backend is busy (engine busy)');
  });

  // What the backends emit today (src/backends/*): local, docker and the kubernetes event translation.
  test.each([
    ['local', 'starting jupyterhub-singleuser', 'Local backend: Starting jupyterhub-singleuser'],
    ['docker', 'created container 1a2b3c4d5e6f', 'Docker backend: Created container 1a2b3c4d5e6f'],
    ['docker', 'pull localhost/img:1: Downloading 3MB/10MB', 'Docker backend: Pull localhost/img:1: Downloading 3MB/10MB'],
    ['kubernetes', 'Scheduled: Successfully assigned ns/pod to node-1.', 'Kubernetes backend: Scheduled: Successfully assigned ns/pod to node-1'],
  ])('a %s backend step "%s" is framed like the others', (backend, detail, expected) => {
    expect(backendStep(backend, detail)).toBe(expected);
    expect(backendStep(backend, detail)).toMatch(VOICE);
  });

  test('the stages of one attempt are in order', () => {
    const order = [PROGRESS.requested, PROGRESS.starting, PROGRESS.retrying, PROGRESS.backendStep, PROGRESS.answering, PROGRESS.done];
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(new Set(order).size).toBe(order.length);
  });
});
