/**
 * Loads `@kubernetes/client-node` and builds a `KubeConfig`. client-node is an ES module only;
 * spawngate compiles to CommonJS (and jest runs CommonJS), so the package is loaded with a real dynamic
 * `import()` that the compilers leave alone. It is pinned to the 1.x line: 2.x depends on undici 8,
 * which needs Node >= 22.19, while spawngate supports Node 20.19.
 */
import type * as K8s from '@kubernetes/client-node';
import { ConfigError } from '../../config';

export type ClientNode = typeof K8s;

/** Where the backend's Kubernetes credentials come from. */
export type KubeconfigSource =
  | { from: 'default' }
  | { from: 'in-cluster' }
  | { from: 'file'; path: string; context?: string };

let loading: Promise<ClientNode> | undefined;

/** A dynamic import the TypeScript/swc CommonJS transforms do not rewrite into `require()`. */
const importEsm = eval('(specifier) => import(specifier)') as (specifier: string) => Promise<unknown>;

/** The client-node module, loaded once per process. */
export function loadClientNode(): Promise<ClientNode> {
  loading ??= (async () => {
    return (await importEsm('@kubernetes/client-node')) as ClientNode;
  })();
  return loading;
}

/** A `KubeConfig` from the configured source. Throws with a message naming the source on failure. */
export function makeKubeConfig(k8s: ClientNode, source: KubeconfigSource): K8s.KubeConfig {
  // Configuration errors (exit status 2), naming where the credentials were looked for.
  const where =
    source.from === 'file' ? `kubernetes.kubeconfig (${source.path})`
    : source.from === 'in-cluster' ? 'the in-cluster service account'
    : process.env.KUBECONFIG ? `KUBECONFIG (${process.env.KUBECONFIG})`
    : '~/.kube/config or the in-cluster service account';
  const kc = new k8s.KubeConfig();
  try {
    if (source.from === 'in-cluster') kc.loadFromCluster();
    else if (source.from === 'file') {
      kc.loadFromFile(source.path);
      if (source.context) kc.setCurrentContext(source.context);
    } else kc.loadFromDefault();
  } catch (err) {
    throw new ConfigError(`kubernetes backend: cannot load credentials from ${where}: ${(err as Error).message}`);
  }
  if (!kc.getCurrentCluster()) {
    throw new ConfigError(`kubernetes backend: no current cluster in ${where}`);
  }
  return kc;
}
