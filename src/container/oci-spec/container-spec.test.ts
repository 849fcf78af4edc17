// The whole builder: every CRI field lands in the right spec field, and the cross-module rules
// (privileged, read-only rootfs, uts hostname, non-root caps) hold together.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors.js';
import { ANNOTATION } from './annotations.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from './capabilities.js';
import { type ContainerSpecInput, type NodeFacts, OCI_VERSION, buildContainerSpec, containerSelinuxLabels } from './container-spec.js';
import { podLevel } from '../../sandbox/mcs-levels.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from './masked-paths.js';
import { containerConfig, imageConfig, mount, namespaceOptions, privilegedSandboxConfig, resources, sandboxConfig } from './test-fixtures.js';

let dir = '';
let rootfs = '';
const HOST_CAPS = ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE');
const facts: NodeFacts = { hostCapabilities: HOST_CAPS, oomScoreAdjFloor: 0, swapAvailable: true, hugetlbAvailable: false, arch: 'x64' };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-spec-build-${process.pid}-`));
  rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nnginx:x:101:101::/:/bin/false\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnginx:x:101:\n');
  for (const f of ['hosts', 'resolv.conf', 'hostname', 'termination-log']) writeFileSync(join(dir, f), '');
  mkdirSync(join(dir, 'shm'));
  mkdirSync(join(dir, 'vol'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function input(o: Partial<ContainerSpecInput> = {}, cfg: Parameters<typeof containerConfig>[0] = {}, sc: Parameters<typeof containerConfig>[1] = {}): ContainerSpecInput {
  return {
    id: 'c0ffee',
    config: containerConfig({ command: ['nginx'], ...cfg }, sc),
    sandbox: {
      id: 'pod1',
      config: sandboxConfig(),
      netnsPath: '/run/crib/ns/pod1/net',
      ipcnsPath: '/run/crib/ns/pod1/ipc',
      utsnsPath: '/run/crib/ns/pod1/uts',
      hostname: 'web-0',
      hostsPath: join(dir, 'hosts'),
      resolvPath: join(dir, 'resolv.conf'),
      hostnamePath: join(dir, 'hostname'),
      shmPath: join(dir, 'shm'),
      cgroupParent: '/kubepods/besteffort/pod1',
    },
    image: { config: imageConfig({ Env: ['NGINX_VERSION=1.27'], Entrypoint: ['/docker-entrypoint.sh'], Cmd: ['nginx', '-g', 'daemon off;'], WorkingDir: '/srv' }), ref: 'sha256:abc' },
    rootfsPath: rootfs,
    rootfsLayers: [rootfs],
    cgroupVersion: 1,
    ...o,
  };
}

describe('buildContainerSpec', () => {
  it('builds a default container spec', async () => {
    const spec = await buildContainerSpec(input({}, { command: [], args: [] }), facts);
    expect(spec.ociVersion).toBe(OCI_VERSION);
    expect(spec.process.args).toEqual(['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;']);
    expect(spec.process.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=web-0', 'NGINX_VERSION=1.27']);
    expect(spec.process.cwd).toBe('/srv');
    expect(spec.process.user).toEqual({ uid: 0, gid: 0, additionalGids: [0] });
    expect(spec.process.terminal).toBe(false);
    expect(spec.process.noNewPrivileges).toBe(false);
    expect(spec.process.capabilities.bounding).toEqual(DEFAULT_CAPABILITIES);
    expect(spec.process.oomScoreAdj).toBeUndefined();
    expect(spec.process.rlimits).toBeUndefined();
    expect(spec.root).toEqual({ path: rootfs, readonly: false });
    expect(spec.hostname).toBeUndefined();
    expect(spec.linux.namespaces).toEqual([
      { type: 'mount' },
      { type: 'network', path: '/run/crib/ns/pod1/net' },
      { type: 'ipc', path: '/run/crib/ns/pod1/ipc' },
      { type: 'uts', path: '/run/crib/ns/pod1/uts' },
      { type: 'pid' },
    ]);
    expect(spec.linux.cgroupsPath).toBe('/kubepods/besteffort/pod1/crib-c0ffee');
    expect(spec.linux.maskedPaths).toEqual(DEFAULT_MASKED_PATHS);
    expect(spec.linux.readonlyPaths).toEqual(DEFAULT_READONLY_PATHS);
    expect(spec.linux.seccomp).toBeUndefined();
    expect(spec.linux.resources.devices[0]).toEqual({ allow: false, access: 'rwm' });
    expect(spec.linux.devices).toBeUndefined();
    expect(spec.linux.sysctl).toBeUndefined();
    expect(spec.mounts.map((m) => m.destination)).toEqual([
      '/proc', '/dev', '/dev/pts', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/dev/shm',
    ]);
    expect(spec.annotations).toEqual({
      [ANNOTATION.containerType]: 'container',
      [ANNOTATION.sandboxId]: 'pod1',
      [ANNOTATION.sandboxName]: 'web',
      [ANNOTATION.sandboxNamespace]: 'default',
      [ANNOTATION.sandboxUid]: 'uid-1234',
      [ANNOTATION.containerName]: 'app',
      [ANNOTATION.imageName]: 'docker.io/library/busybox:latest',
    });
    // JSON round trip: nothing undefined or unserialisable ends up in config.json.
    expect(JSON.parse(JSON.stringify(spec))).toEqual(JSON.parse(JSON.stringify(spec)));
  });

  it('applies the security context and resources', async () => {
    const spec = await buildContainerSpec(
      input(
        {},
        {
          tty: true,
          workingDir: '/work',
          envs: [{ key: 'MODE', value: Buffer.from('prod') }],
          // kubelet's termination message file comes as a CRI mount like any other.
          mounts: [
            mount({ containerPath: '/data', hostPath: join(dir, 'vol'), readonly: true }),
            mount({ containerPath: '/dev/termination-log', hostPath: join(dir, 'termination-log') }),
          ],
          devices: [{ hostPath: '/dev/zero', containerPath: '/dev/zero2', permissions: 'r' }],
          linux: {
            resources: resources({ cpuShares: '256', memoryLimitInBytes: '1048576', oomScoreAdj: '999' }),
            securityContext: null,
          },
        },
      ),
      facts,
    );
    expect(spec.process.terminal).toBe(true);
    expect(spec.process.cwd).toBe('/work');
    expect(spec.process.env.at(-1)).toBe('MODE=prod');
    expect(spec.process.oomScoreAdj).toBe(999);
    expect(spec.linux.resources.cpu).toEqual({ shares: 256 });
    expect(spec.linux.resources.memory).toEqual({ limit: 1048576, swap: 1048576 });
    expect(spec.linux.devices).toEqual([expect.objectContaining({ type: 'c', path: '/dev/zero2', major: 1, minor: 5 })]);
    expect(spec.linux.resources.devices.at(-1)).toEqual({ allow: true, type: 'c', major: 1, minor: 5, access: 'r' });
    expect(spec.mounts.find((m) => m.destination === '/data')).toEqual({ destination: '/data', type: 'bind', source: join(dir, 'vol'), options: ['rbind', 'rprivate', 'ro'] });
    expect(spec.mounts.find((m) => m.destination === '/dev/termination-log')).toEqual({
      destination: '/dev/termination-log', type: 'bind', source: join(dir, 'termination-log'), options: ['rbind', 'rprivate', 'rw'],
    });
  });

  it('honours readonlyRootfs, noNewPrivs, runAsUser, capabilities and RuntimeDefault seccomp', async () => {
    const spec = await buildContainerSpec(
      input({}, {}, {
        readonlyRootfs: true,
        noNewPrivs: true,
        runAsUser: { value: '101' },
        capabilities: { addCapabilities: ['NET_ADMIN'], dropCapabilities: ['ALL'], addAmbientCapabilities: [] },
        seccomp: { profileType: 'RuntimeDefault', localhostRef: '' },
        maskedPaths: ['/proc/kcore'],
        readonlyPaths: ['/proc/sys'],
      }),
      facts,
    );
    expect(spec.root.readonly).toBe(true);
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.process.user).toEqual({ uid: 101, gid: 101, additionalGids: [101] });
    expect(spec.process.capabilities).toEqual({ bounding: ['CAP_NET_ADMIN'], effective: [], permitted: [], inheritable: [], ambient: [] });
    expect(spec.linux.seccomp?.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(spec.linux.maskedPaths).toEqual(['/proc/kcore']);
    expect(spec.linux.readonlyPaths).toEqual(['/proc/sys']);
    expect(spec.mounts.find((m) => m.destination === '/etc/hosts')?.options).toEqual(['rbind', 'rprivate', 'ro']);
    expect(spec.mounts.find((m) => m.destination === '/dev/shm')?.options).toEqual(['rbind', 'rprivate', 'rw']);
  });

  it('gives a privileged container everything', async () => {
    const sandbox = { ...input().sandbox, config: privilegedSandboxConfig() };
    const spec = await buildContainerSpec(
      input({ sandbox }, {}, { privileged: true, seccomp: { profileType: 'RuntimeDefault', localhostRef: '' }, capabilities: { addCapabilities: [], dropCapabilities: ['ALL'], addAmbientCapabilities: [] } }),
      facts,
    );
    expect(spec.process.capabilities.bounding).toEqual(HOST_CAPS);
    expect(spec.process.capabilities.effective).toEqual(HOST_CAPS);
    expect(spec.linux.seccomp).toBeUndefined();
    expect(spec.linux.maskedPaths).toEqual([]);
    expect(spec.linux.readonlyPaths).toEqual([]);
    expect(spec.linux.resources.devices).toEqual([{ allow: true, access: 'rwm' }]);
    expect(spec.linux.devices?.some((d) => d.path === '/dev/null')).toBe(true);
    expect(spec.mounts.find((m) => m.destination === '/sys')?.options).toContain('rw');
  });

  it('sets the hostname only when the container has its own UTS namespace', async () => {
    const own = input({ sandbox: { ...input().sandbox, netnsPath: undefined, ipcnsPath: undefined, utsnsPath: undefined } }, {}, {
      namespaceOptions: namespaceOptions({ network: 'CONTAINER', ipc: 'CONTAINER', pid: 'CONTAINER' }),
    });
    const spec = await buildContainerSpec(own, facts);
    expect(spec.hostname).toBe('web-0');
    expect(spec.linux.namespaces).toEqual([{ type: 'mount' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'pid' }]);
  });

  it('uses the systemd cgroup form for a slice parent', async () => {
    const spec = await buildContainerSpec(input({ sandbox: { ...input().sandbox, cgroupParent: 'kubepods-besteffort-pod1.slice' } }), facts);
    expect(spec.linux.cgroupsPath).toBe('kubepods-besteffort-pod1.slice:crib:c0ffee');
  });

  it('touches nothing on the node when the request is invalid', async () => {
    const missing = join(dir, 'would-be-created');
    const bad = input({ image: { config: imageConfig({}), ref: 'x' } }, { command: [], mounts: [mount({ containerPath: '/m', hostPath: missing })] });
    await expect(buildContainerSpec(bad, facts)).rejects.toThrow(/no command specified/);
    expect(existsSync(missing)).toBe(false);
  });

  const failures: [string, () => ContainerSpecInput, Function, RegExp][] = [
    ['no command', () => input({ image: { config: imageConfig({}), ref: 'x' } }, { command: [] }), InvalidArgumentError, /no command specified/],
    ['bad mount path', () => input({}, { mounts: [mount({ containerPath: 'data', hostPath: '/tmp' })] }), InvalidArgumentError, /mounts\[0\].containerPath "data"/],
    ['pid TARGET (kubectl debug --target)', () => input({}, {}, { namespaceOptions: namespaceOptions({ pid: 'TARGET', targetId: 'c1' }) }), FailedPreconditionError, /namespaceOptions.pid TARGET \(targetId "c1"\): the target container's PID namespace is not known/],
    ['unknown capability', () => input({}, {}, { capabilities: { addCapabilities: ['CAP_FLY'], dropCapabilities: [], addAmbientCapabilities: [] } }), InvalidArgumentError, /unknown capability "CAP_FLY"/],
    ['unreadable seccomp profile', () => input({}, {}, { seccomp: { profileType: 'Localhost', localhostRef: '/nonexistent/profile.json' } }), FailedPreconditionError, /seccomp profile \/nonexistent\/profile.json cannot be read/],
    ['invalid device path', () => input({}, { devices: [{ hostPath: '/dev/crib-missing', containerPath: '/dev/x', permissions: 'rwm' }] }), InvalidArgumentError, /devices\[0\].hostPath \/dev\/crib-missing/],
    ['privileged container in an unprivileged pod', () => input({}, {}, { privileged: true }), InvalidArgumentError, /privileged container needs a privileged pod sandbox/],
    ['user namespace POD in a pod without one', () => input({}, {}, { namespaceOptions: namespaceOptions({ usernsOptions: { mode: 'POD', uids: [], gids: [] } }) }), FailedPreconditionError, /the pod sandbox has no user namespace/],
    ['relative rootfs', () => input({ rootfsPath: 'rootfs' }), InvalidArgumentError, /rootfsPath "rootfs" must be absolute/],
  ];
  for (const [name, make, cls, msg] of failures) {
    it(`fails: ${name}`, async () => {
      const p = buildContainerSpec(make(), facts);
      await expect(p).rejects.toBeInstanceOf(cls);
      await expect(p).rejects.toThrow(msg);
    });
  }
});

describe('buildContainerSpec: AppArmor and SELinux follow the node', () => {
  const lsmAsked = (): [Parameters<typeof containerConfig>[0], Parameters<typeof containerConfig>[1]] => [
    { mounts: [mount({ containerPath: '/vol', hostPath: join(dir, 'vol'), selinuxRelabel: true })] },
    { apparmor: { profileType: 'RuntimeDefault', localhostRef: '' }, selinuxOptions: { user: '', role: '', type: 'spc_t', level: 's0:c1,c2' } },
  ];

  it('a node without AppArmor or SELinux: no profile, no labels, selinux_relabel ignored', async () => {
    const [cfg, sc] = lsmAsked();
    // Even a relabel the SELinux path would refuse is never looked at.
    cfg!.mounts!.push(mount({ containerPath: '/etc-copy', hostPath: '/etc', selinuxRelabel: true, readonly: true }));
    const spec = await buildContainerSpec(input({}, cfg, sc), facts);
    expect(spec.process.apparmorProfile).toBeUndefined();
    expect(spec.process.selinuxLabel).toBeUndefined();
    expect(spec.linux.mountLabel).toBeUndefined();
  });

  it('a node with both: crib-default and the labels reach the spec', async () => {
    let loads = 0;
    const checked: [string, string, boolean][] = [];
    const lsmFacts: NodeFacts = {
      ...facts,
      lsm: {
        apparmor: { isLoaded: async () => false, ensureDefaultProfile: async () => { loads++; } },
        selinux: {
          defaults: { process: 'system_u:system_r:container_t:s0', file: 'system_u:object_r:container_file_t:s0' },
          checkDefined: (l, fromOptions) => { checked.push([l.processLabel, l.mountLabel, fromOptions]); },
        },
      },
    };
    const [cfg, sc] = lsmAsked();
    // (No relabel of a real volume here: chcon needs a kernel with SELinux.)
    const spec = await buildContainerSpec(input({}, { mounts: [] }, sc), lsmFacts);
    expect(spec.process.apparmorProfile).toBe('crib-default');
    expect(loads).toBe(1);
    expect(spec.process.selinuxLabel).toBe('system_u:system_r:spc_t:s0:c1,c2');
    expect(spec.linux.mountLabel).toBe('system_u:object_r:container_file_t:s0:c1,c2');
    // Both labels were checked against the policy, as coming from the request's options.
    expect(checked).toEqual([['system_u:system_r:spc_t:s0:c1,c2', 'system_u:object_r:container_file_t:s0:c1,c2', true]]);
    // A label the policy does not define fails the build with the policy check's error.
    const undefinedType = { ...lsmFacts, lsm: { selinux: { ...lsmFacts.lsm!.selinux!, checkDefined: () => { throw new Error('not defined by the policy'); } } } };
    await expect(buildContainerSpec(input({}, { mounts: [] }, sc), undefinedType)).rejects.toThrow(/not defined by the policy/);
    // A system directory is refused before anything touches it.
    cfg!.mounts!.push(mount({ containerPath: '/etc-copy', hostPath: '/etc', selinuxRelabel: true }));
    await expect(buildContainerSpec(input({}, { mounts: cfg!.mounts!.slice(1) }, sc), lsmFacts))
      .rejects.toThrow(/mounts\[0\]: selinux_relabel of \/etc is refused/);
  });

  it('SELinux: labels the caller already worked out (and the policy checked) are used as they are, not checked again', async () => {
    let checks = 0;
    const lsmFacts: NodeFacts = {
      ...facts,
      lsm: {
        selinux: {
          defaults: { process: 'system_u:system_r:container_t:s0', file: 'system_u:object_r:container_file_t:s0' },
          checkDefined: () => { checks++; },
        },
      },
    };
    const sc = { selinuxOptions: { user: '', role: '', type: 'spc_t', level: 's0:c3,c4' } };
    const given = containerSelinuxLabels(containerConfig({ mounts: [] }, sc), input().sandbox, lsmFacts.lsm)!;
    expect(checks).toBe(1);
    const spec = await buildContainerSpec({ ...input({}, { mounts: [] }, sc), selinuxLabels: given }, lsmFacts);
    expect(checks).toBe(1);
    expect(spec.process.selinuxLabel).toBe('system_u:system_r:spc_t:s0:c3,c4');
    expect(spec.linux.mountLabel).toBe('system_u:object_r:container_file_t:s0:c3,c4');
  });

  it('SELinux: containers that name no level run at the level recorded for their pod (its hash if none)', async () => {
    const lsmFacts: NodeFacts = {
      ...facts,
      lsm: {
        selinux: {
          defaults: { process: 'system_u:system_r:container_t:s0', file: 'system_u:object_r:container_file_t:s0' },
          checkDefined: () => undefined,
        },
      },
    };
    const pod = { ...input().sandbox, selinuxLevel: 's0:c5,c6' };
    for (const name of ['first', 'second']) {
      const spec = await buildContainerSpec(input({ id: name, sandbox: pod }), lsmFacts);
      expect(spec.process.selinuxLabel).toBe('system_u:system_r:container_t:s0:c5,c6');
      expect(spec.linux.mountLabel).toBe('system_u:object_r:container_file_t:s0:c5,c6');
    }
    // The rootfs is mounted with what containerSelinuxLabels gives: the same level.
    expect(containerSelinuxLabels(containerConfig({ mounts: [] }), pod, lsmFacts.lsm)?.mountLabel).toBe('system_u:object_r:container_file_t:s0:c5,c6');
    // A pod recorded without a level (made while the node ran without SELinux): its hash.
    const spec = await buildContainerSpec(input({ sandbox: { ...input().sandbox, selinuxLevel: undefined } }), lsmFacts);
    expect(spec.process.selinuxLabel).toBe(`system_u:system_r:container_t:${podLevel(input().sandbox.id)}`);
  });
});
