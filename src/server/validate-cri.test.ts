// The validator on configs decoded from the wire (through the CRI proto, defaults filled in),
// as the RPC handlers see them.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import type { ContainerConfig__Output } from '../gen/runtime/v1/ContainerConfig.js';
import type { PodSandboxConfig__Output } from '../gen/runtime/v1/PodSandboxConfig.js';
import { DEFAULT_CRI_LIMITS } from './cri-limits.js';
import { criProto } from './cri-proto.js';
import { CriValidator } from './validate-cri.js';

const rpcs = () => criProto().runtime.v1.RuntimeService.service;

function podConfig(extra: Record<string, unknown> = {}): PodSandboxConfig__Output {
  const m = rpcs().RunPodSandbox;
  const config = {
    metadata: { name: 'web', namespace: 'default', uid: 'b7a1e2d4-0f1c-4c8e-9a55-3d1f6a2c7e90', attempt: 0 },
    hostname: 'web',
    logDirectory: '/var/log/pods/default_web_b7a1e2d4',
    labels: { app: 'web', 'io.kubernetes.pod.name': 'web' },
    annotations: { 'kubernetes.io/config.seen': '2024-01-01T00:00:00Z' },
    dnsConfig: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] },
    portMappings: [{ protocol: 'TCP' as const, containerPort: 80, hostPort: 8080, hostIp: '' }],
    linux: { cgroupParent: '/kubepods/besteffort/podb7a1e2d4', sysctls: { 'net.ipv4.ip_local_port_range': '1024 65000' } },
    ...extra,
  };
  return m.requestDeserialize(m.requestSerialize({ config })).config!;
}

function containerConfig(extra: Record<string, unknown> = {}): ContainerConfig__Output {
  const m = rpcs().CreateContainer;
  const config = {
    metadata: { name: 'app', attempt: 0 },
    image: { image: 'registry.k8s.io/pause:3.9' },
    command: ['/bin/sh', '-c'],
    args: ['exec sleep 1000'],
    envs: [{ key: 'PATH', value: Buffer.from('/usr/bin:/bin') }, { key: 'KUBERNETES_SERVICE_HOST', value: Buffer.from('10.96.0.1') }],
    mounts: [{ containerPath: '/etc/hosts', hostPath: '/var/lib/kubelet/pods/x/etc-hosts' }],
    labels: { 'io.kubernetes.container.name': 'app' },
    annotations: { 'io.kubernetes.container.hash': 'abc123' },
    logPath: 'app/0.log',
    ...extra,
  };
  return m.requestDeserialize(m.requestSerialize({ podSandboxId: 'p', config })).config!;
}

const v: CriValidator = new CriValidator(DEFAULT_CRI_LIMITS);

function refusal(fn: () => void): InvalidArgumentError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).grpcCode).toBe(status.INVALID_ARGUMENT);
    return err as InvalidArgumentError;
  }
  throw new Error('expected a refusal');
}

describe('CriValidator', () => {
  it('accepts what kubelet sends for a pod and its containers', () => {
    v.podSandboxConfig('RunPodSandbox', podConfig());
    v.containerConfig('CreateContainer', containerConfig());
  });

  it('refuses oversized annotations naming the field, the size and the config key', () => {
    const big = { 'example.com/blob': 'x'.repeat(256 * 1024) };
    const err = refusal(() => v.podSandboxConfig('RunPodSandbox', podConfig({ annotations: big })));
    expect(err.message).toBe(
      'RunPodSandbox: config.annotations is 262160 bytes (keys and values), more than the limit of 262144 (limits.max_annotation_bytes)');
    expect(refusal(() => v.containerConfig('CreateContainer', containerConfig({ annotations: big }))).message)
      .toMatch(/^CreateContainer: config\.annotations is 262160 bytes/);
    // Exactly at the limit is fine.
    v.podSandboxConfig('RunPodSandbox', podConfig({ annotations: { 'example.com/blob': 'x'.repeat(256 * 1024 - 16) } }));
    expect(refusal(() => v.containerConfig('CreateContainer', containerConfig({ image: { image: 'i', annotations: big } }))).message)
      .toMatch(/config\.image\.annotations is 262160 bytes/);
  });

  it('honours configured limits', () => {
    const small: CriValidator = new CriValidator({ ...DEFAULT_CRI_LIMITS, maxAnnotationBytes: 1024, maxMounts: 1 });
    expect(refusal(() => small.podSandboxConfig('RunPodSandbox', podConfig({ annotations: { a: 'x'.repeat(1024) } }))).message)
      .toMatch(/more than the limit of 1024 \(limits\.max_annotation_bytes\)/);
    const mounts = [{ containerPath: '/a', hostPath: '/a' }, { containerPath: '/b', hostPath: '/b' }];
    expect(refusal(() => small.containerConfig('CreateContainer', containerConfig({ mounts }))).message)
      .toBe('CreateContainer: config.mounts has 2 entries, more than the limit of 1 (limits.max_mounts)');
  });

  it('refuses bad label keys and values, quoting a truncated value', () => {
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', podConfig({ labels: { 'a b': 'x' } }))).message)
      .toMatch(/^RunPodSandbox: config\.labels key "a b" has a name part/);
    const long = 'v'.repeat(5000);
    const msg = refusal(() => v.podSandboxConfig('RunPodSandbox', podConfig({ labels: { app: long } }))).message;
    expect(msg).toMatch(/^RunPodSandbox: config\.labels\["app"\] "v+… \(5000 bytes\)" is 5000 characters, more than 253$/);
    expect(msg.length).toBeLessThan(300);
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', podConfig({ labels: { a: 'x'.repeat(200) , ...Object.fromEntries(
      Array.from({ length: 400 }, (_, i) => [`k${i}`, 'v'.repeat(200)])) } }))).message).toMatch(/config\.labels is \d+ bytes .*limits\.max_label_bytes/);
  });

  it('refuses names that would inject into CNI_ARGS or paths', () => {
    const meta = (m: Record<string, unknown>) => ({ metadata: { name: 'web', namespace: 'default', uid: 'u1', attempt: 0, ...m } });
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', podConfig(meta({ name: 'x;K8S_POD_NAMESPACE=kube-system' })))).message)
      .toMatch(/^RunPodSandbox: config\.metadata\.name "x;K8S_POD_NAMESPACE=kube-system" must consist of letters, digits, '-' and '\.'/);
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', podConfig(meta({ namespace: 'a=b' })))).message)
      .toMatch(/config\.metadata\.namespace "a=b"/);
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', podConfig(meta({ uid: '../x' })))).message).toMatch(/config\.metadata\.uid/);
    expect(refusal(() => v.containerConfig('CreateContainer', containerConfig({ metadata: { name: 'a/b' } }))).message)
      .toMatch(/config\.metadata\.name "a\/b"/);
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', { ...podConfig(), metadata: null })).message)
      .toBe('RunPodSandbox: config.metadata is required');
  });

  it('refuses a relative or non-normalised log directory', () => {
    for (const dir of ['var/log/pods', './logs', '/var/log/../../etc', '/var/log/./pods']) {
      expect(refusal(() => v.podSandboxConfig('RunPodSandbox', podConfig({ logDirectory: dir }))).message)
        .toMatch(/^RunPodSandbox: config\.logDirectory ".*" must be an absolute path without "\." or "\.\." components$/);
    }
    v.podSandboxConfig('RunPodSandbox', podConfig({ logDirectory: '' }));
    expect(refusal(() => v.containerConfig('CreateContainer', containerConfig({ logPath: '../../etc/x.log' }))).message)
      .toMatch(/config\.logPath .* must be a relative path/);
  });

  it('bounds the environment and the command line by the kernel\'s and the configured limits', () => {
    const hugeValue = Buffer.alloc(128 * 1024, 'a');
    expect(refusal(() => v.containerConfig('CreateContainer', containerConfig({ envs: [{ key: 'K', value: hugeValue }] }))).message)
      .toMatch(/config\.envs\[0\] is 131074 bytes, more than the limit of 131072 \(the kernel's MAX_ARG_STRLEN\)/);
    const many = Array.from({ length: 40 }, (_, i) => ({ key: `K${i}`, value: Buffer.alloc(60_000, 'a') }));
    expect(refusal(() => v.containerConfig('CreateContainer', containerConfig({ envs: many }))).message)
      .toMatch(/config\.envs is \d+ bytes \(names and values\), more than the limit of 2097152 \(limits\.max_env_bytes\)/);
    expect(refusal(() => v.containerConfig('CreateContainer', containerConfig({ envs: [{ key: 'A=B', value: Buffer.from('x') }] }))).message)
      .toMatch(/config\.envs\[0\]\.key "A=B" must be a non-empty name/);
    expect(refusal(() => v.containerConfig('CreateContainer', containerConfig({ args: ['a\0b'] }))).message)
      .toMatch(/config\.args\[0\] contains a NUL byte/);
    expect(refusal(() => v.execCommand('ExecSync', Array.from({ length: 20 }, () => 'x'.repeat(120_000)))).message)
      .toMatch(/^ExecSync: cmd is \d+ bytes, more than the limit of 2097152 \(limits\.max_args_bytes\)$/);
  });

  it('refuses DNS, port and sysctl values that would corrupt generated files or rules', () => {
    const dns = (d: Record<string, unknown>) => podConfig({ dnsConfig: { servers: [], searches: [], options: [], ...d } });
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', dns({ servers: ['1.1.1.1\nnameserver 6.6.6.6'] }))).message)
      .toMatch(/config\.dnsConfig\.servers\[0\] .* is not an IP address/);
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', dns({ servers: ['1.1.1.1', '1.0.0.1', '8.8.8.8', '8.8.4.4'] }))).message)
      .toMatch(/servers has 4 entries, more than the limit of 3/);
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', dns({ searches: ['a b'] }))).message).toMatch(/is not a DNS name/);
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', dns({ options: ['ndots:5\nsearch evil'] }))).message).toMatch(/resolver option/);
    const pm = (p: Record<string, unknown>) => podConfig({ portMappings: [{ protocol: 'TCP', containerPort: 80, hostPort: 80, hostIp: '', ...p }] });
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', pm({ hostIp: '1.2.3.4 accept' }))).message)
      .toMatch(/config\.portMappings\[0\]\.hostIp "1\.2\.3\.4 accept" is not an IP address/);
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', pm({ hostPort: 70000 }))).message).toMatch(/hostPort 70000 is not a port number/);
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', podConfig({ hostname: 'a\nb' }))).message).toMatch(/config\.hostname/);
    expect(refusal(() => v.podSandboxConfig('RunPodSandbox', podConfig({ linux: { sysctls: { '../../x': '1' } } }))).message)
      .toMatch(/config\.linux\.sysctls\["\.\.\/\.\.\/x"\] "\.\.\/\.\.\/x" is not a sysctl name/);
  });

  it('refuses cgroup file names that leave the cgroup, on create and on update', () => {
    expect(refusal(() => v.containerResources('UpdateContainerResources', containerConfig({
      linux: { resources: { unified: { '../../../cgroup.procs': '1' } } },
    }).linux!.resources)).message).toMatch(/^UpdateContainerResources: linux\.unified key "\.\.\/\.\.\/\.\.\/cgroup\.procs" is not a cgroup interface file/);
    v.containerResources('UpdateContainerResources', containerConfig({ linux: { resources: { unified: { 'memory.high': '100000' } } } }).linux!.resources);
  });

  it('bounds image references on the image calls', () => {
    expect(refusal(() => v.imageReference('PullImage', { image: 'a'.repeat(1024 * 1024), annotations: {}, userSpecifiedImage: '', runtimeHandler: '', imageRef: '' })).message)
      .toBe('PullImage: image.image is 1048576 bytes, more than the limit of 4096 (the longest image reference)');
  });
});
