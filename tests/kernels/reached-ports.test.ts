/**
 * Where spawngate connects to a kernel: the host ports a container backend published for it when the
 * backend reports all five, else the kernel's own ports (local processes, pods reached at their IP).
 */
import { kernelAddress, reachedPorts, REACHED_PORTS_KEY } from '../../src/kernels/lifecycle/connection-files';

const own = { shell_port: 52317, iopub_port: 52318, stdin_port: 52319, control_port: 52320, hb_port: 52321 };

test('published host ports reported by the backend are the ports spawngate connects to', () => {
  expect(reachedPorts(own, { shell: 40001, iopub: 40002, stdin: 40003, control: 40004, hb: 40005 })).toEqual({
    shell_port: 40001,
    iopub_port: 40002,
    stdin_port: 40003,
    control_port: 40004,
    hb_port: 40005,
  });
});

test('no report, or an incomplete or invalid one, means the kernel is reached at its own ports', () => {
  expect(reachedPorts(own, undefined)).toEqual(own);
  expect(reachedPorts(own, { shell: 40001, iopub: 40002 })).toEqual(own);
  expect(reachedPorts(own, { shell: 40001, iopub: 40002, stdin: 40003, control: 40004, hb: 0 })).toEqual(own);
});

test('a recorded kernel is reached at its host and the ports kept in backend_ref, else its own', () => {
  const reached = { ...own, shell_port: 40001 };
  expect(kernelAddress({ host: '127.0.0.1', ports: own, backend_ref: { id: 'c1', [REACHED_PORTS_KEY]: reached } })).toEqual({ host: '127.0.0.1', ports: reached });
  expect(kernelAddress({ host: '10.0.0.7', ports: own, backend_ref: { id: 'c1' } })).toEqual({ host: '10.0.0.7', ports: own });
  expect(kernelAddress({ host: null, ports: own, backend_ref: { [REACHED_PORTS_KEY]: { shell_port: 'x' } } })).toEqual({ host: '127.0.0.1', ports: own });
});
