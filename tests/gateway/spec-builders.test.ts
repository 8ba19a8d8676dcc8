/**
 * The one spec builder per workload kind, on its own (pure functions): what a host-process backend
 * gets differs from what a container backend gets exactly where the capabilities say, and the
 * kernel image allow-list refuses what a user's kernel.json may not pick.
 */
import { CONNECTION_INFO_ENV } from '../../src/backends';
import { loadConfig, type Profile } from '../../src/config';
import { buildKernelSpec, connectionInfo, CONTAINER_KERNEL_PORTS, kernelImage, KernelRequestError } from '../../src/kernels';
import { buildServerSpec } from '../../src/servers';

const config = loadConfig({ SPAWNGATE_HOME_ROOT: '/homes', SPAWNGATE_ALLOW_ROOT: '1', SPAWNGATE_PUBLIC_URL: 'http://gw.example:8090' });
const profile: Profile = {
  slug: 'p',
  display_name: 'P',
  description: '',
  default: false,
  resources: { cpu_limit: 2, memory_limit_mib: 1024 },
  env: { EXTRA: '1' },
  image: 'img:1',
  kubernetes: { nodeSelector: { pool: 'x' } },
  docker: { network: 'n' },
};

describe('server spec', () => {
  const input = { username: 'josé', serverId: '7', workloadName: 'sg-srv-jos-0123456789', profile, hubEnv: { JUPYTERHUB_USER: 'josé', JUPYTER_GATEWAY_URL: 'http://hub-says', KERNEL_USERNAME: 'mallory' }, args: ['--debug'], gatewayToken: 'tok', hostEnv: { PATH: '/usr/bin', HOME: '/root' } };

  test('a host process listens on 127.0.0.1 on a port the backend picks, inherits PATH, gets --allow-root when configured', () => {
    const spec = buildServerSpec(config, { ...input, capabilities: { hostProcesses: true, signal: true } });
    expect(spec.ports).toEqual({ default: 0 });
    expect(spec.command.slice(-2)).toEqual(['--debug', '--allow-root']);
    expect(spec.env).toMatchObject({ PATH: '/usr/bin', JUPYTERHUB_SERVICE_URL: 'http://127.0.0.1:{port}/user/jos%C3%A9/', EXTRA: '1' });
    expect(spec.overrides).toBeUndefined();
  });

  test('a container listens on 0.0.0.0:8888, inherits nothing of the service, gets its backend overrides', () => {
    const spec = buildServerSpec(config, { ...input, capabilities: { hostProcesses: false, overridesKey: 'kubernetes', signal: false } });
    expect(spec.ports).toEqual({ default: 8888 });
    expect(spec.command).not.toContain('--allow-root');
    expect(spec.env.PATH).toBeUndefined();
    expect(spec.env.JUPYTERHUB_SERVICE_URL).toBe('http://0.0.0.0:{port}/user/jos%C3%A9/');
    expect(spec.overrides).toEqual(profile.kubernetes);
  });

  test("the variables spawngate owns are its own, whatever the hub sent", () => {
    const spec = buildServerSpec(config, { ...input, capabilities: { hostProcesses: false, signal: true } });
    expect(spec.env).toMatchObject({ JUPYTER_GATEWAY_URL: 'http://gw.example:8090', JUPYTER_GATEWAY_AUTH_TOKEN: 'tok', KERNEL_USERNAME: 'josé', JUPYTERHUB_USER: 'josé' });
    expect(spec.labels['spawngate/server-id']).toBe('7');
  });
});

describe('kernel spec', () => {
  const base = {
    kernelId: '00000000-0000-4000-8000-000000000001',
    username: 'alice',
    experimentName: 'genomics',
    limits: { cpu_limit: 2, memory_limit_mib: 512 },
    argv: ['python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
    env: { KERNEL_X: 'y', PATH: '/opt/env/bin' },
    ports: CONTAINER_KERNEL_PORTS,
  };

  test('a host process runs the kernelspec argv on the connection file spawngate wrote, with HOME set to the home', () => {
    const spec = buildKernelSpec(config, { ...base, placement: { hostProcesses: true, connectionFile: '/run/sg/k1/c.json', hostEnv: { PATH: '/usr/bin', LANG: 'C.UTF-8' } } });
    expect(spec.command).toEqual(['python3', '-m', 'ipykernel_launcher', '-f', '/run/sg/k1/c.json']);
    // The kernelspec's own PATH wins over the service's.
    expect(spec.env).toMatchObject({ PATH: '/opt/env/bin', LANG: 'C.UTF-8', HOME: '/homes/alice', KERNEL_ID: base.kernelId, KERNEL_USERNAME: 'alice', KERNEL_CPUS_LIMIT: '2', KERNEL_MEMORY_LIMIT: '512Mi' });
    expect(spec.env[CONNECTION_INFO_ENV]).toBeUndefined();
    expect(spec.name).toBe(`sg-krn-${base.kernelId}`);
    expect(spec.labels['spawngate/experiment']).toBe('genomics');
  });

  test("an EG launcher on the host gets its private directory as TMPDIR, unless its env names a temp directory; other kernels and containers get none", () => {
    const egArgv = ['python', 'launch_ipykernel.py', '--RemoteProcessProxy.kernel-id', base.kernelId, '--RemoteProcessProxy.response-address', '127.0.0.1:5555'];
    const host = (env: Record<string, string>, tmpDir?: string) =>
      buildKernelSpec(config, { ...base, argv: egArgv, env, placement: { hostProcesses: true, connectionFile: '/run/sg/k1/c.json', hostEnv: { PATH: '/usr/bin' }, ...(tmpDir ? { tmpDir } : {}) } }).env;
    expect(host({}, '/run/sg/k1').TMPDIR).toBe('/run/sg/k1');
    // The kernelspec's (or an allow-listed client's) choice stays, whichever of the names Python and R read it sets.
    expect(host({ TMPDIR: '/scratch' }, '/run/sg/k1').TMPDIR).toBe('/scratch');
    expect(host({ TMP: '/scratch' }, '/run/sg/k1')).toMatchObject({ TMP: '/scratch' });
    expect(host({ TMP: '/scratch' }, '/run/sg/k1').TMPDIR).toBeUndefined();
    expect(host({ TEMP: '/scratch' }, '/run/sg/k1').TMPDIR).toBeUndefined();
    expect(host({}).TMPDIR).toBeUndefined();
    const pod = buildKernelSpec(config, { ...base, argv: egArgv, env: {}, placement: { hostProcesses: false, responseAddress: '10.0.0.1:5555', publicKey: 'pk' } });
    expect(pod.env.TMPDIR).toBeUndefined();
  });

  test('a container runs the launcher with the argv and the connection info in its environment', () => {
    const info = connectionInfo('0.0.0.0', CONTAINER_KERNEL_PORTS, 'k3y', 'python3');
    const spec = buildKernelSpec(config, { ...base, image: 'kernel:1', placement: { hostProcesses: false, launcher: ['python3', '-m', 'spawngate.launcher'], connectionInfo: info } });
    expect(spec.command).toEqual(['python3', '-m', 'spawngate.launcher']);
    expect(JSON.parse(spec.env.SPAWNGATE_KERNEL_ARGV!)).toEqual(base.argv);
    expect(JSON.parse(spec.env[CONNECTION_INFO_ENV]!)).toMatchObject({ ip: '0.0.0.0', transport: 'tcp', key: 'k3y', shell_port: CONTAINER_KERNEL_PORTS.shell_port });
    expect(spec.env.LANG).toBeUndefined();
    expect(spec.image).toBe('kernel:1');
  });

  test('kernel pod placement reaches the kubernetes backend only, the experiment\'s keys replacing the general ones', () => {
    const kernels = { ...config.file.kernels, kubernetes: { nodeSelector: { pool: 'cpu' }, priorityClassName: 'low' }, experiment_kubernetes: { genomics: { nodeSelector: { pool: 'gpu' } } } };
    const placed = { ...config, file: { ...config.file, kernels } };
    const info = connectionInfo('0.0.0.0', CONTAINER_KERNEL_PORTS, 'k3y', 'python3');
    const container = { ...base, image: 'kernel:1', placement: { hostProcesses: false as const, launcher: ['python3'], connectionInfo: info } };
    expect(buildKernelSpec(placed, { ...container, overridesKey: 'kubernetes' }).overrides).toEqual({ nodeSelector: { pool: 'gpu' }, priorityClassName: 'low' });
    expect(buildKernelSpec(placed, { ...container, experimentName: 'other', overridesKey: 'kubernetes' }).overrides).toEqual({ nodeSelector: { pool: 'cpu' }, priorityClassName: 'low' });
    expect(buildKernelSpec(placed, { ...container, overridesKey: 'docker' }).overrides).toBeUndefined();
    expect(buildKernelSpec(config, { ...container, overridesKey: 'kubernetes' }).overrides).toBeUndefined();
  });

  test("the image allow-list: a kernel.json's image_name must be allowed; otherwise kernels.image", () => {
    const kernels = { allowed_images: ['good:1'], image: 'default:1' };
    const named = (image: string) => ({ process_proxy: { config: { image_name: image } } });
    expect(kernelImage(kernels, named('good:1'), 'k', 'docker')).toBe('good:1');
    expect(() => kernelImage(kernels, named('evil:1'), 'k', 'docker')).toThrow(KernelRequestError);
    expect(kernelImage(kernels, {}, 'k', 'docker')).toBe('default:1');
    expect(() => kernelImage({ allowed_images: [] }, {}, 'k', 'kubernetes')).toThrow(/no kernel image configured for the kubernetes backend/);
  });
});
