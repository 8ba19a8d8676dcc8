/**
 * What differs between engines serving the Docker API, learnt once from `/version`.
 *
 * podman (seen with 4.3.1, k8s-file log driver) stores a line written in two pieces — Python's `print`
 * writes the text, then the newline — as a partial entry followed by a full one, and its `tail`
 * parameter drops partial entries: the logs of `print("ready")` come back as one empty line. In a
 * loop of 40 short-lived containers printing one line, 11 lost it. So on podman the whole log is read
 * and cut here; Docker's `tail` is exact and keeps reads small.
 */
import type Docker from 'dockerode';

export interface EngineQuirks {
  /** `logs?tail=N` loses pieces of lines written in several writes. */
  tailDropsPartialLines: boolean;
  /** The engine is podman: bridge networks reach each other unless created with `isolate=true`. */
  podman: boolean;
}

export async function detectQuirks(docker: Docker): Promise<EngineQuirks> {
  const version = (await docker.version()) as { Components?: { Name?: string }[] };
  const podman = (version.Components ?? []).some((c) => /podman/i.test(c.Name ?? ''));
  return { tailDropsPartialLines: podman, podman };
}
