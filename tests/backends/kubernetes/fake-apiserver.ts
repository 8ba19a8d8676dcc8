/**
 * A stand-in for the Kubernetes API server (and a kubelet) that the real @kubernetes/client-node talks to
 * over HTTP with a bearer token. It implements only the paths the kubernetes backend calls: pods
 * create/get/list/watch/delete, pods/log, secrets create, events list/watch. Every object received is
 * validated against the official schemas (`kubernetes-models`) plus the field rules the API server
 * checks beyond them (apiserver-rules.ts: names, labels, annotations, env names by `kubernetesMinor`,
 * ports, tolerations, extended resources, volumes, sub-paths, Secret keys and size), refused with 422
 * and causes like the API server; Pod Security `restricted` by namespace label (403); requests defaulted
 * from limits and checked against `nodeAllocatable` by the scheduler; every request is authorized against the
 * Role rules in docs/kubernetes-rbac.md (403, recorded in `denied`, which tests assert empty).
 *
 * Watches: resourceVersion resume, bookmarks (pods only, as on a real server), `compact()` to make old
 * versions expire (410 Gone), `dropWatches()` to cut connections, `stallWatches()` to leave them open
 * but silent; server-side timeouts, failure answers and the kubelet's delete modes live in
 * apiserver-watch.ts (`behaviour`). Deletes: a grace period (SIGTERM, SIGKILL after it, containers
 * reported terminated, then the object removed); `gracePeriodSeconds: 0` is a force delete (the object
 * is gone at once, the process is killed a kubelet step later). Kubelet: schedules, "pulls", and starts pods; with
 * `runCommands` it runs the container's command as a local child process, so logs, exit codes, grace
 * periods and the kernel's sockets are real. Failure states on demand: nodeSelector
 * `spawngate.test/unschedulable` or a GPU limit (the nodes have none), an image containing `does-not-exist`, `oomKill(name)`, `evict(name)`,
 * and `deleteExternally(name)` (someone else's `kubectl delete`).
 *
 * How a local process stands in for a pod (what a real kubelet gives a container, mapped onto one host):
 * - Network: each pod gets its own loopback address 127.<a>.<b>.<c> (Linux routes all of 127/8 to lo)
 *   as its pod IP. A real pod binds 0.0.0.0 inside its own network namespace; here that would collide,
 *   so the fake sets `SPAWNGATE_BIND_IP=<pod IP>` (read by spawngate.launcher) and replaces `0.0.0.0` by
 *   the pod IP in env values (e.g. jupyterhub-singleuser's `JUPYTERHUB_SERVICE_URL`).
 * - Volumes: a Secret volume is materialized into a temp directory (files with the volume's
 *   `defaultMode`, owned root:fsGroup as the kubelet does); a PVC volume maps to `persistentVolumes[claim]`
 *   on the host plus the mount's `subPath`. A mount path that differs from the host directory is
 *   rewritten in env values and `workingDir` (e.g. `SPAWNGATE_CONNECTION_SOURCE`), as a bind mount would
 *   make it appear.
 * - Image: `images[image].env` is merged under the pod's env (images set PATH, PYTHONPATH…).
 * - User: the kubelet refuses `runAsNonRoot` with no uid or uid 0 (CreateContainerConfigError). When the
 *   test runs as root, the process really runs as `runAsUser`/`runAsGroup` (setuid through spawn's
 *   uid/gid), so "never root" is exercised; as a non-root test user it runs as that user (no setuid).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { Pod, Secret } from 'kubernetes-models/v1';
import { defaultRequestsFromLimits, insufficientResources, podCauses, restrictedViolations, secretCauses, type NodeAllocatable } from './apiserver-rules';
import { WatchBehaviour } from './apiserver-watch';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
export interface RequestRecord {
  verb: string;
  resource: string;
  name?: string;
  namespace: string;
}
type Kind = 'pods' | 'events';
interface LogEntry {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  kind: Kind;
  obj: Obj;
}
interface WatchStream {
  kind: Kind;
  match: (o: Obj) => boolean;
  res: http.ServerResponse;
  timer?: NodeJS.Timeout;
  /** Silently stalled: nothing more is written, the socket stays open. */
  stalled?: boolean;
}
interface Runtime {
  proc?: ChildProcess;
  output: string[];
  partial: string;
  oom?: boolean;
  killTimer?: NodeJS.Timeout;
}

/** The Role from docs/kubernetes-rbac.md (the fenced yaml block). */
export function readDocumentedRole(): { namespace: string; rules: PolicyRule[] } {
  const md = readFileSync(path.join(__dirname, '../../../docs/kubernetes-rbac.md'), 'utf8');
  const block = /```yaml\n([\s\S]*?)```/.exec(md);
  if (!block) throw new Error('docs/kubernetes-rbac.md has no yaml Role block');
  const role = YAML.parse(block[1]!) as { kind: string; metadata: { namespace: string }; rules: PolicyRule[] };
  if (role.kind !== 'Role') throw new Error(`docs/kubernetes-rbac.md: expected a Role, got ${role.kind}`);
  return { namespace: role.metadata.namespace, rules: role.rules };
}

export interface FakeApiServerOptions {
  namespace: string;
  /** More namespaces the Role is bound in (one namespace per experiment). Names are unique across them. */
  extraNamespaces?: string[];
  rules: PolicyRule[];
  /** Run each pod's command as a local process. Default false (pods just become Running). */
  runCommands?: boolean;
  /** Delay between kubelet steps, ms. Default 15. */
  stepMs?: number;
  /** Bookmark interval on watches that asked for them, ms. Default 300. */
  bookmarkMs?: number;
  /** Host directory backing each PersistentVolumeClaim (by claim name). */
  persistentVolumes?: Record<string, string>;
  /** GPUs (`nvidia.com/gpu`) each of the three fake nodes has. Default 0: a pod asking for one is unschedulable. */
  nodeGpus?: number;
  /** Validate objects against the schemas (default true; the scale bench turns it off to time spawngate, not AJV). */
  validate?: boolean;
  /** Delay of the garbage collection of a deleted pod's owned Secrets, ms (the real GC is asynchronous). Default 0. */
  gcDelayMs?: number;
  /** What an image contributes to the process: its environment (merged under the pod's env). */
  images?: Record<string, { env?: Record<string, string> }>;
  /** Kubernetes 1.<minor> served on /version; decides the env-name rule (relaxed from 32). Default 31. */
  kubernetesMinor?: number;
  /** Each of the three nodes' allocatable (requests beyond it stay Pending/Unschedulable). Default 64 cores, 256Gi. */
  nodeAllocatable?: { cpu: string; memory: string };
  /** Labels of the namespaces (e.g. `pod-security.kubernetes.io/enforce: restricted`). */
  namespaceLabels?: Record<string, Record<string, string>>;
}

const clone = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T;
const now = () => new Date().toISOString();
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function status(code: number, reason: string, message: string, details?: Obj): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code, ...(details ? { details } : {}) };
}

function labelMatcher(selector: string | null): (o: Obj) => boolean {
  if (!selector) return () => true;
  const terms = selector.split(',').map((t) => t.trim()).filter(Boolean);
  return (o) => {
    const labels: Record<string, string> = o.metadata?.labels ?? {};
    return terms.every((t) => {
      const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(t);
      if (m) return m[2] === '!=' ? labels[m[1]!] !== m[3] : labels[m[1]!] === m[3];
      return t.startsWith('!') ? !(t.slice(1) in labels) : t in labels;
    });
  };
}

function fieldMatcher(selector: string | null): (o: Obj) => boolean {
  if (!selector) return () => true;
  const terms = selector.split(',').map((t) => t.split('='));
  return (o) => terms.every(([p, v]) => String(p!.split('.').reduce<Obj | undefined>((x, k) => x?.[k], o)) === v);
}

export class FakeApiServer {
  readonly token = randomBytes(16).toString('hex');
  readonly namespace: string;
  readonly namespaces: Set<string>;
  /** Every authorized request, in order. */
  readonly requests: RequestRecord[] = [];
  /** Requests refused by RBAC (a test fails if this is not empty). */
  readonly denied: string[] = [];
  /** Objects refused by schema validation (422). */
  readonly invalid: { kind: string; message: string }[] = [];
  /** Bodies of created objects as received (before server-side defaults). */
  readonly received: Obj[] = [];
  readonly pods = new Map<string, Obj>();
  readonly secrets = new Map<string, Obj>();
  readonly events = new Map<string, Obj>();
  /** When each pod was created and became Running (ms since epoch): the kubelet's own share of a launch. */
  readonly timeline = new Map<string, { created: number; running?: number }>();
  /** Watch timeouts, failure answers, the kubelet's delete modes (apiserver-watch.ts). */
  readonly behaviour = new WatchBehaviour();
  private readonly runtimes = new Map<string, Runtime>();
  /** Processes of force-deleted pods, still running until the kubelet gets to them. */
  private readonly orphans = new Map<string, ChildProcess>();
  private readonly server: http.Server;
  private readonly watches = new Set<WatchStream>();
  private readonly log: LogEntry[] = [];
  private rv = 100;
  private ipCounter = 1;
  private stepMs: number;
  /** Pod IPs are 127.<base>.x.y: one base per process, so fakes in parallel test processes do not overlap. */
  private readonly ipBase = 20 + (process.pid % 200);
  private readonly volumeRoot = mkdtempSync(path.join(os.tmpdir(), 'sg-fake-kubelet-'));
  private compactedRv = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  url = '';

  constructor(private readonly opts: FakeApiServerOptions) {
    this.namespace = opts.namespace;
    this.stepMs = opts.stepMs ?? 15;
    this.namespaces = new Set([opts.namespace, ...(opts.extraNamespaces ?? [])]);
    this.server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        try {
          this.handle(req, res, body);
        } catch (err) {
          this.send(res, 500, status(500, 'InternalError', String(err)));
        }
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** A kubeconfig file pointing at this server (http, bearer token). */
  writeKubeconfig(dir: string): string {
    const file = path.join(dir, 'kubeconfig.yaml');
    writeFileSync(
      file,
      YAML.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'spawngate', user: { token: this.token } }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'spawngate', namespace: this.namespace } }],
        'current-context': 'fake',
      }),
    );
    return file;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const w of this.watches) w.res.destroy();
    for (const r of this.runtimes.values()) r.proc?.kill('SIGKILL');
    for (const p of this.orphans.values()) p.kill('SIGKILL');
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
    rmSync(this.volumeRoot, { recursive: true, force: true });
  }

  // ---- test controls -----------------------------------------------------------------

  /** Changes the delay between kubelet steps from now on (a slow image pull, a busy node). */
  setStepMs(ms: number): void {
    this.stepMs = ms;
  }

  /**
   * Makes every resourceVersion older than the current one expire: resuming a watch from one gets 410
   * Gone. The current one stays valid (as after an etcd compaction), so a fresh list's version can be
   * watched from.
   */
  compact(): void {
    this.compactedRv = this.rv;
    this.log.length = 0;
  }

  /** Objects our watches do not see change elsewhere in the cluster: the shared resourceVersion moves on. */
  advanceVersion(): void {
    this.rv++;
  }

  /** Cuts every open watch connection (the client resumes from its last resourceVersion). */
  dropWatches(): void {
    for (const w of this.watches) w.res.destroy();
    this.watches.clear();
  }

  /** Open watches stop receiving anything (events, bookmarks) while their connections stay open. */
  stallWatches(): void {
    for (const w of this.watches) w.stalled = true;
  }

  /** How many watch connections are open now (stalled ones included). */
  openWatches(kind: Kind): number {
    return [...this.watches].filter((w) => w.kind === kind).length;
  }

  /** Whether the process standing in for this pod's container still runs (any instance of that name). */
  containerRunning(name: string): boolean {
    return [this.runtimes.get(name)?.proc, this.orphans.get(name)].some((p) => !!p && p.exitCode === null && p.signalCode === null);
  }

  /** Removes a pod without telling current watchers (as if the event was lost in a compaction). */
  removePodSilently(name: string): void {
    this.runtimes.get(name)?.proc?.kill('SIGKILL');
    this.pods.delete(name);
    this.rv++;
  }

  /** The Secrets whose ownerReferences name this pod (any instance of that name). */
  secretsOwnedBy(podName: string): Obj[] {
    return [...this.secrets.values()].filter((s) => (s.metadata.ownerReferences ?? []).some((o: Obj) => o.kind === 'Pod' && o.name === podName));
  }

  /** Puts a Running pod straight into the store (a namespace that already holds other workloads). */
  preloadPod(name: string, labels: Record<string, string>, namespace = this.namespace): void {
    const pod: Obj = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels, annotations: { 'example.com/owner': 'someone-else' }, uid: randomUUID(), creationTimestamp: now(), resourceVersion: String(++this.rv) },
      spec: {
        restartPolicy: 'Always',
        nodeName: 'fake-node',
        containers: [{ name: 'main', image: 'registry.example/app:1', command: ['/app', '--serve'], env: [{ name: 'MODE', value: 'prod' }], resources: { requests: { cpu: '100m', memory: '128Mi' } } }],
      },
      status: {
        phase: 'Running',
        podIP: this.nextPodIP(),
        conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'True' }],
        containerStatuses: [{ name: 'main', image: 'registry.example/app:1', imageID: '', ready: true, restartCount: 0, started: true, state: { running: { startedAt: now() } } }],
      },
    };
    this.pods.set(name, pod);
  }

  /** Someone else deletes the pod (kubectl delete, a namespace cleanup): SIGTERM, then gone. */
  deleteExternally(name: string): void {
    const pod = this.pods.get(name);
    if (!pod || pod.metadata.deletionTimestamp) return;
    pod.metadata.deletionTimestamp = now();
    pod.metadata.deletionGracePeriodSeconds = 0;
    this.modified('pods', pod);
    const rt = this.runtimes.get(name);
    if (rt?.proc && rt.proc.exitCode === null && rt.proc.signalCode === null) rt.proc.kill('SIGKILL');
    else this.later(() => this.finalize(name, pod.metadata.uid as string));
  }

  oomKill(name: string): void {
    const rt = this.runtimes.get(name);
    if (rt?.proc) {
      rt.oom = true;
      rt.proc.kill('SIGKILL');
    } else this.terminate(name, 137, 'OOMKilled');
    this.emitEvent(name, 'Warning', 'OOMKilling', 'Memory cgroup out of memory: Killed process');
  }

  evict(name: string): void {
    const pod = this.pods.get(name);
    if (!pod) return;
    this.runtimes.get(name)?.proc?.kill('SIGKILL');
    pod.status = {
      ...pod.status,
      phase: 'Failed',
      reason: 'Evicted',
      message: 'The node was low on resource: memory.',
      conditions: [{ type: 'Ready', status: 'False' }],
      containerStatuses: [this.containerStatus(pod, { terminated: { exitCode: 137, reason: 'Error' } }, false)],
    };
    this.modified('pods', pod);
    this.emitEvent(name, 'Warning', 'Evicted', 'The node was low on resource: memory.');
  }

  // ---- HTTP ----------------------------------------------------------------------------

  private send(res: http.ServerResponse, code: number, obj: Obj | string): void {
    const text = typeof obj === 'string' ? obj : JSON.stringify(obj);
    res.writeHead(code, { 'content-type': typeof obj === 'string' ? 'text/plain' : 'application/json' });
    res.end(text);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return this.send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    }
    // Readable by every authenticated client (system:discovery), outside any Role.
    if (url.pathname === '/version' && req.method === 'GET') return this.send(res, 200, this.version());
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/([a-z]+)(?:\/([^/]+))?(?:\/([a-z]+))?$/.exec(url.pathname);
    if (!m) return this.send(res, 404, status(404, 'NotFound', `no route ${req.method} ${url.pathname}`));
    const [, ns, resource, name, sub] = m as unknown as [string, string, string, string | undefined, string | undefined];
    const watch = url.searchParams.get('watch') === 'true';
    const verb =
      req.method === 'POST' ? 'create'
      : req.method === 'DELETE' ? 'delete'
      : req.method === 'GET' ? (name ? 'get' : watch ? 'watch' : 'list')
      : req.method!.toLowerCase();
    const fullResource = sub ? `${resource}/${sub}` : resource;
    const allowed =
      this.namespaces.has(ns) &&
      this.opts.rules.some((r) => r.apiGroups.includes('') && r.resources.includes(fullResource) && r.verbs.includes(verb));
    if (!allowed) {
      const msg = `${verb} ${fullResource}${name ? ` ${name}` : ''} in namespace ${ns}`;
      this.denied.push(msg);
      return this.send(res, 403, status(403, 'Forbidden', `forbidden: cannot ${msg}`));
    }
    this.requests.push({ verb, resource: fullResource, namespace: ns, ...(name ? { name } : {}) });
    if (this.behaviour.intercept(verb, fullResource, res)) return;
    const q = url.searchParams;
    if (resource === 'pods') {
      if (sub === 'log' && name) return this.podLog(res, name, Number(q.get('tailLines') ?? 0));
      if (sub) return this.send(res, 404, status(404, 'NotFound', `no subresource ${sub}`));
      if (name && this.pods.get(name)?.metadata.namespace !== ns && verb !== 'create') {
        return this.send(res, 404, status(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' }));
      }
      if (verb === 'create') return this.createPod(res, body, ns);
      if (verb === 'get') return this.getPod(res, name!);
      if (verb === 'delete') return this.deletePod(res, name!, q, body);
      const byLabel = labelMatcher(q.get('labelSelector'));
      return this.listOrWatch(res, 'pods', (o) => o.metadata?.namespace === ns && byLabel(o), q);
    }
    if (resource === 'secrets' && verb === 'create') return this.createSecret(res, body, ns);
    if (resource === 'events' && (verb === 'list' || verb === 'watch')) {
      const byField = fieldMatcher(q.get('fieldSelector'));
      return this.listOrWatch(res, 'events', (o) => o.metadata?.namespace === ns && byField(o), q);
    }
    return this.send(res, 405, status(405, 'MethodNotAllowed', `${verb} ${fullResource} not implemented by the stand-in`));
  }

  private version(): Obj {
    const minor = String(this.opts.kubernetesMinor ?? 31);
    return { major: '1', minor, gitVersion: `v1.${minor}.0`, gitCommit: '', gitTreeState: 'clean', buildDate: '', goVersion: '', compiler: 'gc', platform: 'linux/amd64' };
  }

  /** 422 like the API server, or undefined when valid. */
  private validate(kind: string, obj: Obj, ns: string, validateSchema: () => void): Obj | undefined {
    const causes: { reason: string; message: string; field: string }[] = [];
    try {
      if (this.opts.validate !== false) validateSchema();
    } catch (err) {
      const errors = (err as { errors?: { instancePath: string; message?: string }[] }).errors ?? [];
      for (const e of errors) causes.push({ reason: 'FieldValueInvalid', message: e.message ?? 'invalid', field: e.instancePath.slice(1).replace(/\//g, '.') });
      if (!errors.length) causes.push({ reason: 'FieldValueInvalid', message: String(err), field: '' });
    }
    const name = obj.metadata?.name;
    if (typeof name !== 'string' || name.length > 63 || !DNS_LABEL.test(name)) {
      causes.push({ reason: 'FieldValueInvalid', message: 'a lowercase RFC 1123 label must consist of…', field: 'metadata.name' });
    }
    causes.push(...(kind === 'Pod' ? podCauses(obj, { minor: this.opts.kubernetesMinor ?? 31 }) : secretCauses(obj)));
    if (obj.metadata?.namespace && obj.metadata.namespace !== ns) {
      causes.push({ reason: 'FieldValueInvalid', message: 'the namespace of the provided object does not match the namespace sent on the request', field: 'metadata.namespace' });
    }
    if (!causes.length) return undefined;
    const message = `${kind} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`;
    this.invalid.push({ kind, message });
    return status(422, 'Invalid', message, { name, kind: kind.toLowerCase() + 's', causes });
  }

  private stamp(obj: Obj, ns: string): void {
    obj.metadata = { ...obj.metadata, namespace: ns, uid: randomUUID(), creationTimestamp: now() };
  }

  private record(kind: Kind, type: LogEntry['type'], obj: Obj): void {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    const entry = { rv: this.rv, type, kind, obj: clone(obj) };
    this.log.push(entry);
    if (this.log.length > 5000) this.log.shift();
    for (const w of this.watches) if (w.kind === kind && w.match(entry.obj)) this.write(w, entry);
  }

  private modified(kind: Kind, obj: Obj): void {
    this.record(kind, 'MODIFIED', obj);
  }

  private write(w: WatchStream, e: { type: string; obj: Obj }): void {
    if (w.stalled) return;
    w.res.write(`${JSON.stringify({ type: e.type, object: e.obj })}\n`);
  }

  private listOrWatch(res: http.ServerResponse, kind: Kind, match: (o: Obj) => boolean, q: URLSearchParams): void {
    const store = kind === 'pods' ? this.pods : this.events;
    if (q.get('watch') !== 'true') {
      let items = [...store.values()].filter(match).map(clone);
      const limit = Number(q.get('limit') ?? 0);
      if (limit > 0) items = items.slice(0, limit);
      return this.send(res, 200, { kind: kind === 'pods' ? 'PodList' : 'EventList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items });
    }
    const from = Number(q.get('resourceVersion') ?? 0);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders(); // as the API server: the watch is established before the first event
    const w: WatchStream = { kind, match, res };
    if (from && from < this.compactedRv) {
      res.write(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`) })}\n`);
      res.end();
      return;
    }
    const { open, bookmarks } = this.behaviour.openWatch(kind, q, res);
    if (!open) return;
    for (const e of this.log) if (e.kind === kind && e.rv > from && match(e.obj)) this.write(w, e);
    if (bookmarks) {
      w.timer = setInterval(() => {
        const kindName = kind === 'pods' ? 'Pod' : 'Event';
        this.write(w, { type: 'BOOKMARK', obj: { kind: kindName, apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } });
      }, this.opts.bookmarkMs ?? 300);
    }
    this.watches.add(w);
    res.on('close', () => {
      if (w.timer) clearInterval(w.timer);
      this.watches.delete(w);
    });
  }

  private getPod(res: http.ServerResponse, name: string): void {
    const pod = this.pods.get(name);
    if (!pod) return this.send(res, 404, status(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' }));
    this.send(res, 200, pod);
  }

  private createPod(res: http.ServerResponse, body: string, ns: string): void {
    const obj = JSON.parse(body) as Obj;
    this.received.push(clone(obj));
    const invalid = this.validate('Pod', obj, ns, () => new Pod(obj as ConstructorParameters<typeof Pod>[0]).validate());
    if (invalid) return this.send(res, 422, invalid);
    const name = obj.metadata.name as string;
    const psa = this.opts.namespaceLabels?.[ns]?.['pod-security.kubernetes.io/enforce'];
    const violations = psa === 'restricted' ? restrictedViolations(obj) : [];
    if (violations.length) {
      const message = `pods "${name}" is forbidden: violates PodSecurity "restricted:latest": ${violations.join(', ')}`;
      this.invalid.push({ kind: 'Pod', message });
      return this.send(res, 403, status(403, 'Forbidden', message, { name, kind: 'pods' }));
    }
    defaultRequestsFromLimits(obj);
    if (this.pods.has(name)) return this.send(res, 409, status(409, 'AlreadyExists', `pods "${name}" already exists`, { name, kind: 'pods' }));
    this.stamp(obj, ns);
    obj.status = { phase: 'Pending', qosClass: 'Burstable' };
    this.pods.set(name, obj);
    this.timeline.set(name, { created: Date.now() });
    this.record('pods', 'ADDED', obj);
    this.send(res, 201, obj);
    this.later(() => this.schedule(name, obj.metadata.uid as string));
  }

  private createSecret(res: http.ServerResponse, body: string, ns: string): void {
    const obj = JSON.parse(body) as Obj;
    this.received.push(clone(obj));
    const invalid = this.validate('Secret', obj, ns, () => new Secret(obj as ConstructorParameters<typeof Secret>[0]).validate());
    if (invalid) return this.send(res, 422, invalid);
    const name = obj.metadata.name as string;
    if (this.secrets.has(name)) return this.send(res, 409, status(409, 'AlreadyExists', `secrets "${name}" already exists`));
    this.stamp(obj, ns);
    obj.metadata.resourceVersion = String(++this.rv);
    this.secrets.set(name, obj);
    const { stringData, ...stored } = obj;
    this.send(res, 201, { ...stored, data: Object.fromEntries(Object.entries((stringData ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) });
  }

  private deletePod(res: http.ServerResponse, name: string, q: URLSearchParams, body: string): void {
    const pod = this.pods.get(name);
    if (!pod) return this.send(res, 404, status(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' }));
    const opts = body ? (JSON.parse(body) as Obj) : {};
    const wantUid = opts.preconditions?.uid;
    if (wantUid && wantUid !== pod.metadata.uid) {
      return this.send(res, 409, status(409, 'Conflict', `Precondition failed: UID in precondition: ${wantUid}, UID in object meta: ${pod.metadata.uid}`));
    }
    const grace = Number(q.get('gracePeriodSeconds') ?? opts.gracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30);
    const rt = this.runtimes.get(name);
    const running = !!rt?.proc && rt.proc.exitCode === null && rt.proc.signalCode === null;
    this.behaviour.recordDelete(pod, grace, running);
    const uid = pod.metadata.uid as string;
    if (grace === 0) {
      // Force: the object goes at once; the container is the kubelet's business, later (if it is up).
      if (!pod.metadata.deletionTimestamp) pod.metadata.deletionTimestamp = now();
      pod.metadata.deletionGracePeriodSeconds = 0;
      if (running) {
        this.orphans.set(name, rt.proc!);
        if (this.behaviour.kubelet !== 'down') this.later(() => rt.proc!.kill('SIGKILL'));
      }
      this.finalize(name, uid);
      return this.send(res, 200, pod);
    }
    if (!pod.metadata.deletionTimestamp) {
      pod.metadata.deletionTimestamp = now();
      pod.metadata.deletionGracePeriodSeconds = grace;
      this.modified('pods', pod);
      if (this.behaviour.kubelet === 'down') return this.send(res, 200, pod);
      if (running) {
        this.emitEvent(name, 'Normal', 'Killing', `Stopping container ${pod.spec.containers[0].name}`);
        rt.proc!.kill('SIGTERM');
        rt.killTimer = setTimeout(() => rt.proc?.kill('SIGKILL'), grace * 1000);
      } else this.later(() => this.kubeletRemove(name, uid));
    }
    this.send(res, 200, pod);
  }

  /** The kubelet's final delete of a terminated pod (lost when the kubelet is `no-final-delete`). */
  private kubeletRemove(name: string, uid: string): void {
    if (this.behaviour.kubelet === 'ok') this.finalize(name, uid);
  }

  private finalize(name: string, uid: string): void {
    const pod = this.pods.get(name);
    if (!pod || pod.metadata.uid !== uid) return;
    this.pods.delete(name);
    this.runtimes.delete(name);
    this.record('pods', 'DELETED', pod);
    // garbage collection of owned secrets
    const collect = () => {
      for (const [sname, s] of this.secrets) {
        if ((s.metadata.ownerReferences ?? []).some((o: Obj) => o.uid === uid)) this.secrets.delete(sname);
      }
    };
    if (this.opts.gcDelayMs) this.later(collect, this.opts.gcDelayMs);
    else collect();
  }

  private podLog(res: http.ServerResponse, name: string, tail: number): void {
    const pod = this.pods.get(name);
    if (!pod) return this.send(res, 404, status(404, 'NotFound', `pods "${name}" not found`));
    const rt = this.runtimes.get(name);
    if (!rt) return this.send(res, 400, status(400, 'BadRequest', `container "${pod.spec.containers[0].name}" in pod "${name}" is waiting to start: ContainerCreating`));
    const lines = rt.partial ? [...rt.output, rt.partial] : rt.output;
    const out = tail > 0 ? lines.slice(-tail) : lines;
    this.send(res, 200, out.length ? `${out.join('\n')}\n` : '');
  }

  // ---- kubelet -------------------------------------------------------------------------

  private later(fn: () => void, ms = this.stepMs): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  emitEvent(podName: string, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const pod = this.pods.get(podName);
    const ns = (pod?.metadata.namespace as string | undefined) ?? this.namespace;
    const ev: Obj = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${podName}.${randomBytes(8).toString('hex')}`, namespace: ns, uid: randomUUID(), creationTimestamp: now() },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: podName, namespace: ns, uid: pod?.metadata.uid },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: now(),
      lastTimestamp: now(),
      source: { component: reason.includes('Scheduling') || reason === 'Scheduled' ? 'default-scheduler' : 'kubelet' },
    };
    this.events.set(ev.metadata.name, ev);
    this.record('events', 'ADDED', ev);
  }

  private containerStatus(pod: Obj, state: Obj, ready: boolean): Obj {
    const c = pod.spec.containers[0];
    return { name: c.name, image: c.image, imageID: '', ready, restartCount: 0, started: !!state.running, state };
  }

  private alive(name: string, uid: string): Obj | undefined {
    const pod = this.pods.get(name);
    return pod && pod.metadata.uid === uid && !pod.metadata.deletionTimestamp ? pod : undefined;
  }

  private schedule(name: string, uid: string): void {
    const pod = this.alive(name, uid);
    if (!pod) return;
    // The fake's three nodes have `nodeGpus` GPUs each (default none): a pod asking for more cannot be
    // placed (as a cluster without a GPU node group, or with its GPUs taken).
    const gpus = Number(pod.spec.containers[0].resources?.limits?.['nvidia.com/gpu'] ?? 0);
    const unschedulable = pod.spec.nodeSelector?.['spawngate.test/unschedulable']
      ? "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
      : gpus > (this.opts.nodeGpus ?? 0)
        ? '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.'
        : insufficientResources(pod, this.allocatable(), 3);
    if (unschedulable) {
      const message = unschedulable;
      pod.status.conditions = [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: now() }];
      this.modified('pods', pod);
      this.emitEvent(name, 'Warning', 'FailedScheduling', message);
      return;
    }
    pod.spec.nodeName = 'fake-node';
    pod.status = { ...pod.status, hostIP: '127.0.0.1', conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: now() }] };
    this.modified('pods', pod);
    this.emitEvent(name, 'Normal', 'Scheduled', `Successfully assigned ${pod.metadata.namespace}/${name} to fake-node`);
    this.later(() => this.pull(name, uid));
  }

  private allocatable(): NodeAllocatable {
    return { cpu: '64', memory: '256Gi', ...this.opts.nodeAllocatable, 'nvidia.com/gpu': String(this.opts.nodeGpus ?? 0) };
  }

  private pull(name: string, uid: string): void {
    const pod = this.alive(name, uid);
    if (!pod) return;
    const image = pod.spec.containers[0].image as string;
    this.emitEvent(name, 'Normal', 'Pulling', `Pulling image "${image}"`);
    if (image.includes('does-not-exist')) {
      const message = `Failed to pull image "${image}": not found`;
      pod.status.containerStatuses = [this.containerStatus(pod, { waiting: { reason: 'ErrImagePull', message } }, false)];
      this.modified('pods', pod);
      this.emitEvent(name, 'Warning', 'Failed', message);
      this.later(() => {
        if (!this.alive(name, uid)) return;
        pod.status.containerStatuses = [this.containerStatus(pod, { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` } }, false)];
        this.modified('pods', pod);
        this.emitEvent(name, 'Normal', 'BackOff', `Back-off pulling image "${image}"`);
      });
      return;
    }
    this.emitEvent(name, 'Normal', 'Pulled', `Successfully pulled image "${image}"`);
    this.later(() => this.startContainer(name, uid, 0));
  }

  private startContainer(name: string, uid: string, attempt: number): void {
    const pod = this.alive(name, uid);
    if (!pod) return;
    const missing = (pod.spec.volumes ?? []).filter((v: Obj) => v.secret && !this.secrets.has(v.secret.secretName));
    if (missing.length) {
      if (attempt % 20 === 0) this.emitEvent(name, 'Warning', 'FailedMount', `MountVolume.SetUp failed for volume "${missing[0].name}" : secret "${missing[0].secret.secretName}" not found`);
      return this.later(() => this.startContainer(name, uid, attempt + 1));
    }
    const c = pod.spec.containers[0];
    // env from a Secret that does not exist (yet): the kubelet reports CreateContainerConfigError and retries.
    const missingRef = (c.env ?? []).map((e: Obj) => e.valueFrom?.secretKeyRef).find((r: Obj | undefined) => r && !this.secrets.get(r.name));
    if (missingRef) {
      const message = `secret "${missingRef.name}" not found`;
      if (pod.status.containerStatuses?.[0]?.state?.waiting?.message !== message) {
        pod.status.containerStatuses = [this.containerStatus(pod, { waiting: { reason: 'CreateContainerConfigError', message } }, false)];
        this.modified('pods', pod);
        this.emitEvent(name, 'Warning', 'Failed', `Error: ${message}`);
      }
      return this.later(() => this.startContainer(name, uid, attempt + 1));
    }
    this.emitEvent(name, 'Normal', 'Created', `Created container ${c.name}`);
    const rt: Runtime = { output: [], partial: '' };
    this.runtimes.set(name, rt);
    const podIP = this.nextPodIP();
    if (this.opts.runCommands) {
      const user = this.runAs(pod);
      if (typeof user === 'string') return this.waitingForever(name, 'CreateContainerConfigError', user);
      const mounts = this.mountVolumes(pod, user);
      if (typeof mounts === 'string') return this.waitingForever(name, 'CreateContainerConfigError', mounts);
      const remap = (v: string) => {
        for (const [mountPath, hostDir] of mounts) {
          if (v === mountPath || v.startsWith(`${mountPath}/`)) return hostDir + v.slice(mountPath.length);
        }
        return v;
      };
      const env: Record<string, string> = { ...(this.opts.images?.[c.image]?.env ?? { PATH: '/usr/local/bin:/usr/bin:/bin' }), HOSTNAME: name };
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        const value = ref ? this.secretValue(ref.name, ref.key) : e.value;
        env[e.name] = remap((value ?? '').replaceAll('0.0.0.0', podIP));
      }
      env.SPAWNGATE_BIND_IP = podIP;
      const cwd = c.workingDir ? remap(c.workingDir) : undefined;
      const proc = spawn(c.command[0], c.command.slice(1), {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        cwd: cwd ?? '/', // an image's default WORKDIR (and never the test's checkout, which the pod's uid may not read)
        ...(process.getuid?.() === 0 ? { uid: user.uid, gid: user.gid } : {}),
      });
      rt.proc = proc;
      const onData = (chunk: Buffer) => {
        const parts = (rt.partial + chunk.toString('utf8')).split('\n');
        rt.partial = parts.pop()!;
        rt.output.push(...parts);
        if (rt.output.length > 10_000) rt.output.splice(0, rt.output.length - 10_000);
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', onData);
      proc.on('error', (err) => {
        rt.output.push(String(err));
      });
      proc.on('close', (code, signal) => {
        if (rt.killTimer) clearTimeout(rt.killTimer);
        const p = this.pods.get(name);
        if (!p || p.metadata.uid !== uid) return;
        if (p.metadata.deletionTimestamp) {
          // The kubelet reports the containers terminated, then deletes the object (grace 0).
          this.terminate(name, code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), 'Error');
          return this.later(() => this.kubeletRemove(name, uid));
        }
        if (rt.oom) return this.terminate(name, 137, 'OOMKilled');
        const exitCode = code ?? 128 + (signal === 'SIGKILL' ? 9 : 15);
        this.terminate(name, exitCode, exitCode === 0 ? 'Completed' : 'Error');
      });
    }
    pod.status = {
      ...pod.status,
      phase: 'Running',
      podIP,
      podIPs: [{ ip: podIP }],
      startTime: now(),
      conditions: [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Initialized', status: 'True' },
        { type: 'ContainersReady', status: 'True' },
        { type: 'Ready', status: 'True' },
      ],
      containerStatuses: [this.containerStatus(pod, { running: { startedAt: now() } }, true)],
    };
    const t = this.timeline.get(name);
    if (t) t.running = Date.now();
    this.modified('pods', pod);
    this.emitEvent(name, 'Normal', 'Started', `Started container ${c.name}`);
  }

  private nextPodIP(): string {
    const n = ++this.ipCounter;
    return `127.${this.ipBase}.${(n >> 8) & 255}.${n & 255}`;
  }

  /** A container the kubelet cannot start: it stays waiting with this reason (the pod stays Pending). */
  private waitingForever(name: string, reason: string, message: string): void {
    const pod = this.pods.get(name);
    if (!pod) return;
    pod.status.containerStatuses = [this.containerStatus(pod, { waiting: { reason, message } }, false)];
    this.modified('pods', pod);
    this.emitEvent(name, 'Warning', 'Failed', `Error: ${message}`);
  }

  /** A Secret's value by key (stringData as created, or base64 data). */
  private secretValue(secretName: string, key: string): string | undefined {
    const secret = this.secrets.get(secretName);
    const b64 = secret?.data?.[key];
    return secret?.stringData?.[key] ?? (b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8'));
  }

  /** The uid/gid the container runs as, or the kubelet's refusal. */
  private runAs(pod: Obj): { uid: number; gid: number; fsGroup?: number } | string {
    const psc = pod.spec.securityContext ?? {};
    const csc = pod.spec.containers[0].securityContext ?? {};
    const uid = csc.runAsUser ?? psc.runAsUser;
    const nonRoot = csc.runAsNonRoot ?? psc.runAsNonRoot;
    if (nonRoot && (uid === undefined || uid === 0)) {
      return uid === 0 ? 'container\'s runAsUser breaks non-root policy' : 'container has runAsNonRoot and image will run as root';
    }
    const resolved = uid ?? process.getuid?.() ?? 0;
    return { uid: resolved, gid: csc.runAsGroup ?? psc.runAsGroup ?? resolved, ...(psc.fsGroup !== undefined ? { fsGroup: psc.fsGroup } : {}) };
  }

  /** Materializes Secret volumes and resolves PVC mounts: [mountPath, hostDir] pairs, or a mount error. */
  private mountVolumes(pod: Obj, user: { fsGroup?: number }): [string, string][] | string {
    const volumes = new Map<string, Obj>((pod.spec.volumes ?? []).map((v: Obj) => [v.name, v]));
    const out: [string, string][] = [];
    const asRoot = process.getuid?.() === 0;
    for (const m of pod.spec.containers[0].volumeMounts ?? []) {
      const v = volumes.get(m.name);
      if (!v) return `volume ${m.name} not found`;
      if (v.secret) {
        const secret = this.secrets.get(v.secret.secretName);
        const dir = path.join(this.volumeRoot, pod.metadata.uid, m.name);
        mkdirSync(dir, { recursive: true });
        for (const d of [this.volumeRoot, path.dirname(dir), dir]) chmodSync(d, 0o755);
        const data: Record<string, string> = { ...(secret?.stringData ?? {}) };
        for (const [k, b64] of Object.entries((secret?.data ?? {}) as Record<string, string>)) data[k] = Buffer.from(b64, 'base64').toString('utf8');
        const items: { key: string; path: string }[] = v.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }));
        for (const item of items) {
          const file = path.join(dir, item.path);
          writeFileSync(file, data[item.key] ?? '');
          chmodSync(file, v.secret.defaultMode ?? 0o644);
          if (asRoot && user.fsGroup !== undefined) chownSync(file, 0, user.fsGroup);
        }
        out.push([m.mountPath, dir]);
      } else if (v.persistentVolumeClaim) {
        const root = this.opts.persistentVolumes?.[v.persistentVolumeClaim.claimName];
        if (!root) return `persistentvolumeclaim "${v.persistentVolumeClaim.claimName}" not found`;
        const hostDir = m.subPath ? path.join(root, m.subPath) : root;
        // The kubelet creates a missing subPath directory itself, as root, with the volume root's mode.
        if (m.subPath && !existsSync(hostDir)) mkdirSync(hostDir, { recursive: true, mode: statSync(root).mode & 0o7777 });
        if (hostDir !== m.mountPath) out.push([m.mountPath, hostDir]);
      }
    }
    return out;
  }

  private terminate(name: string, exitCode: number, reason: string): void {
    const pod = this.pods.get(name);
    if (!pod) return;
    pod.status = {
      ...pod.status,
      phase: exitCode === 0 ? 'Succeeded' : 'Failed',
      conditions: (pod.status.conditions ?? []).map((c: Obj) => (c.type === 'Ready' || c.type === 'ContainersReady' ? { ...c, status: 'False' } : c)),
      containerStatuses: [this.containerStatus(pod, { terminated: { exitCode, reason, finishedAt: now() } }, false)],
    };
    this.modified('pods', pod);
  }
}
