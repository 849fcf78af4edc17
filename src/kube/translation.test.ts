// Pod -> CRI configs, as kubelet's kuberuntime manager makes them.
import { describe, expect, it } from 'vitest';
import { emptySources } from './config-sources.js';
import { containerConfig, KUBELET_MASKED_PATHS, runAsNonRootViolation } from './container-config.js';
import { parseResolvConf, podDnsConfig } from './dns.js';
import { containerHash } from './labels.js';
import { parseManifest } from './manifest.js';
import { sandboxConfig } from './sandbox-config.js';

const id = { name: 'web', namespace: 'prod', uid: 'uid-1' };

async function pod(spec: string, meta = 'metadata: {name: web, namespace: prod, labels: {app: web}, annotations: {a: b}}') {
  return (await parseManifest(`apiVersion: v1\nkind: Pod\n${meta}\nspec:\n${spec}`, 'pod.yaml'))[0]!.pod;
}

describe('sandbox config', () => {
  it('has kubelet\'s metadata, hostname, log directory, labels, annotations, ports and namespaces', async () => {
    const p = await pod(`  shareProcessNamespace: true
  securityContext: {runAsUser: 1000, supplementalGroups: [5], sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: "0"}]}
  containers:
    - name: a
      image: img
      ports: [{containerPort: 80, hostPort: 8080}, {containerPort: 53, protocol: UDP}]
      securityContext: {privileged: true}`);
    const c = sandboxConfig(p, id, { logRoot: '/var/log/pods', hostResolvConf: 'nameserver 1.1.1.1\nsearch example.com\noptions ndots:2\n' });
    expect(c).toMatchObject({
      metadata: { name: 'web', namespace: 'prod', uid: 'uid-1', attempt: 0 },
      hostname: 'web',
      logDirectory: '/var/log/pods/prod_web_uid-1',
      dnsConfig: { servers: ['1.1.1.1'], searches: ['example.com'], options: ['ndots:2'] },
      portMappings: [{ protocol: 'TCP', containerPort: 80, hostPort: 8080, hostIp: '' }, { protocol: 'UDP', containerPort: 53, hostPort: 0, hostIp: '' }],
      labels: { app: 'web', 'io.kubernetes.pod.name': 'web', 'io.kubernetes.pod.namespace': 'prod', 'io.kubernetes.pod.uid': 'uid-1' },
      annotations: { a: 'b' },
      linux: {
        sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' },
        securityContext: { namespaceOptions: { network: 'POD', pid: 'POD', ipc: 'POD' }, runAsUser: { value: '1000' }, supplementalGroups: ['5'], privileged: true },
      },
    });
  });

  it('lets the pod\'s own labels not override kubelet\'s identity labels, and shares the node\'s namespaces when asked', async () => {
    const p = await pod('  hostNetwork: true\n  hostPID: true\n  hostIPC: true\n  containers: [{name: a, image: img}]', 'metadata: {name: web, namespace: prod, labels: {io.kubernetes.pod.name: fake}}');
    const c = sandboxConfig(p, id, { logRoot: '/l', hostResolvConf: '' }) as { labels: Record<string, string>; hostname: string; linux: { securityContext: { namespaceOptions: unknown } } };
    expect(c.labels['io.kubernetes.pod.name']).toBe('web');
    expect(c.hostname).toBe('');
    expect(c.linux.securityContext.namespaceOptions).toEqual({ network: 'NODE', pid: 'NODE', ipc: 'NODE' });
  });

  it('builds DNS like kubelet: Default/ClusterFirst from resolv.conf, None from dnsConfig only, dnsConfig merged', () => {
    const host = 'nameserver 10.0.0.1\nnameserver 10.0.0.2 # comment\nsearch a.example b.example\noptions ndots:5 rotate\n';
    expect(parseResolvConf(host)).toEqual({ servers: ['10.0.0.1', '10.0.0.2'], searches: ['a.example', 'b.example'], options: ['ndots:5', 'rotate'] });
    expect(podDnsConfig({ dnsPolicy: 'None', dnsConfig: { nameservers: ['9.9.9.9'], options: [{ name: 'ndots', value: '1' }] } }, host))
      .toEqual({ servers: ['9.9.9.9'], searches: [], options: ['ndots:1'] });
    expect(podDnsConfig({ dnsConfig: { nameservers: ['10.0.0.1', '10.0.0.3', '10.0.0.4'], searches: ['c.example'], options: [{ name: 'ndots', value: '2' }] } }, host))
      .toEqual({ servers: ['10.0.0.1', '10.0.0.2', '10.0.0.3'], searches: ['a.example', 'b.example', 'c.example'], options: ['ndots:2', 'rotate'] });
  });
});

describe('container config', () => {
  const ctx = async (spec: string) => {
    const p = await pod(spec);
    return {
      pod: p,
      facts: { ...id, podIp: '10.1.2.3', nodeName: 'n' },
      sources: emptySources(),
      qos: 'Burstable' as const,
      memoryCapacity: 4 * 2 ** 30,
      volumes: [{ name: 'data', hostPath: '/state/pods/prod_web/volumes/kubernetes.io~empty-dir/data', readOnly: false }],
      etcHosts: '/state/pods/prod_web/etc-hosts',
      terminationLogFile: '/state/pods/prod_web/containers/app/2',
    };
  };

  it('names the attempt, log path, labels and annotations as kubelet does', async () => {
    const c = await ctx(`  terminationGracePeriodSeconds: 7
  volumes: [{name: data, emptyDir: {}}]
  containers:
    - name: app
      image: img:1
      command: [sh, -c]
      args: ['echo $(IP) $(POD)']
      workingDir: /w
      env: [{name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}, {name: POD, value: $(IP)-x}]
      ports: [{name: http, containerPort: 80}]
      volumeMounts: [{name: data, mountPath: /data, readOnly: true}]
      resources: {requests: {memory: 1Gi, cpu: 250m}}
      securityContext: {runAsUser: 7, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {add: [NET_ADMIN], drop: [ALL]}}`);
    const spec = c.pod.spec!.containers[0]!;
    const cfg = containerConfig(spec, 2, c, 'img:1') as Record<string, any>;
    expect(cfg.metadata).toEqual({ name: 'app', attempt: 2 });
    expect(cfg.logPath).toBe('app/2.log');
    expect(cfg.command).toEqual(['sh', '-c']);
    expect(cfg.args).toEqual(['echo 10.1.2.3 10.1.2.3-x']);
    expect(cfg.workingDir).toBe('/w');
    expect(cfg.envs.map((e: { key: string; value: Buffer }) => [e.key, e.value.toString()])).toEqual([['IP', '10.1.2.3'], ['POD', '10.1.2.3-x']]);
    expect(cfg.labels).toEqual({ 'io.kubernetes.pod.name': 'web', 'io.kubernetes.pod.namespace': 'prod', 'io.kubernetes.pod.uid': 'uid-1', 'io.kubernetes.container.name': 'app', 'crib.kube.played': 'true' });
    expect(cfg.annotations).toEqual({
      'io.kubernetes.container.hash': containerHash(spec),
      'io.kubernetes.container.restartCount': '2',
      'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
      'io.kubernetes.container.terminationMessagePolicy': 'File',
      'io.kubernetes.pod.terminationGracePeriod': '7',
      'io.kubernetes.container.ports': '[{"name":"http","containerPort":80,"protocol":"TCP"}]',
    });
    expect(cfg.mounts.map((m: { containerPath: string; hostPath: string; readonly: boolean }) => [m.containerPath, m.hostPath, m.readonly])).toEqual([
      ['/data', '/state/pods/prod_web/volumes/kubernetes.io~empty-dir/data', true],
      ['/etc/hosts', '/state/pods/prod_web/etc-hosts', false],
      ['/dev/termination-log', '/state/pods/prod_web/containers/app/2', false],
    ]);
    expect(cfg.linux.resources).toEqual({ cpuShares: 256, cpuPeriod: 100_000, cpuQuota: 0, memoryLimitInBytes: 0, oomScoreAdj: 750 });
    expect(cfg.linux.securityContext).toMatchObject({
      runAsUser: { value: '7' }, privileged: false, noNewPrivs: true, readonlyRootfs: true,
      capabilities: { addCapabilities: ['NET_ADMIN'], dropCapabilities: ['ALL'] }, maskedPaths: KUBELET_MASKED_PATHS,
    });
  });

  it('sets no_new_privs only when allowPrivilegeEscalation is false, and masks nothing for privileged containers', async () => {
    const c = await ctx('  containers: [{name: a, image: i, securityContext: {privileged: true}}, {name: b, image: i}]');
    const a = containerConfig(c.pod.spec!.containers[0]!, 0, c, 'i') as Record<string, any>;
    const b = containerConfig(c.pod.spec!.containers[1]!, 0, c, 'i') as Record<string, any>;
    expect(a.linux.securityContext).toMatchObject({ privileged: true, noNewPrivs: false, maskedPaths: [], readonlyPaths: [] });
    expect(b.linux.securityContext).toMatchObject({ privileged: false, noNewPrivs: false });
    expect(b.linux.securityContext.maskedPaths).toContain('/proc/kcore');
  });

  it('hashes the spec: the same spec the same hash, any change another', () => {
    expect(containerHash({ name: 'a', image: 'x' })).toBe(containerHash({ name: 'a', image: 'x' }));
    expect(containerHash({ name: 'a', image: 'x' })).not.toBe(containerHash({ name: 'a', image: 'y' }));
  });
});

describe('runAsNonRoot', () => {
  const check = async (sc: string, image: { uid?: { value: string } | null; username?: string }) => {
    const p = await pod(`  containers:\n    - name: a\n      image: img\n      securityContext: ${sc}`);
    return runAsNonRootViolation(p.spec!.containers[0]!, p, image);
  };

  it('refuses what would run as root, as kubelet does', async () => {
    expect(await check('{runAsNonRoot: true, runAsUser: 0}', { uid: { value: '1000' } })).toMatch(/runAsUser 0/);
    expect(await check('{runAsNonRoot: true}', { uid: { value: '0' } })).toMatch(/will run as root \(uid 0\)/);
    expect(await check('{runAsNonRoot: true}', {})).toMatch(/names no user/);
    expect(await check('{runAsNonRoot: true}', { uid: null, username: 'nginx' })).toMatch(/non-numeric user "nginx"/);
  });

  it('lets a non-root user through, and checks nothing without runAsNonRoot', async () => {
    expect(await check('{runAsNonRoot: true, runAsUser: 1000}', { uid: { value: '0' } })).toBeUndefined();
    expect(await check('{runAsNonRoot: true}', { uid: { value: '1000' } })).toBeUndefined();
    expect(await check('{runAsNonRoot: false}', { uid: { value: '0' } })).toBeUndefined();
    expect(await check('{privileged: false}', {})).toBeUndefined();
  });
});
