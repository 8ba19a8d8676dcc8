/** The backend and client-node as the bench's measured process loads them. */
export { createKubernetesBackend } from '../../src/backends/kubernetes';
export { loadClientNode as loadClientNodeForBench } from '../../src/backends/kubernetes/client';
