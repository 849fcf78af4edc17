// Mount layout and validation against real host paths, unprivileged. Propagation against real
// shared and slave mounts, and creation failing half-way, are in root-test/container/oci-spec/.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors.js';
import { parseMountInfo } from './mount-info.js';
import { type MountInput, containerMounts } from './mounts.js';
import { mount } from './test-fixtures.js';

let dir = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-spec-mounts-${process.pid}-`));
  for (const f of ['hosts', 'resolv.conf', 'hostname', 'termination-log']) writeFileSync(join(dir, f), '');
  mkdirSync(join(dir, 'shm'));
  mkdirSync(join(dir, 'data'));
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const base = (o: Partial<MountInput> = {}): MountInput => ({
  criMounts: [],
  privileged: false,
  readonlyRootfs: false,
  ipcMode: 'POD',
  recursiveReadOnlySupported: false,
  ...o,
});

const IMAGE = { image: 'busybox', annotations: {}, userSpecifiedImage: '', runtimeHandler: '', imageRef: '' };

const DEFAULTS = ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup'];

describe('containerMounts', () => {
  it('gives the default kernel filesystems, /sys and cgroup read-only', async () => {
    const { mounts, rootfsPropagation } = await containerMounts(base());
    expect(mounts.map((m) => m.destination)).toEqual(DEFAULTS);
    expect(mounts.find((m) => m.destination === '/sys')).toEqual({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
    expect(mounts.find((m) => m.destination === '/sys/fs/cgroup')?.options).toContain('ro');
    expect(mounts.find((m) => m.destination === '/dev/shm')).toEqual({
      destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
    });
    expect(rootfsPropagation).toBeUndefined();
  });

  it('makes /sys and cgroup writable for privileged containers', async () => {
    const { mounts } = await containerMounts(base({ privileged: true }));
    expect(mounts.find((m) => m.destination === '/sys')?.options).toEqual(['nosuid', 'noexec', 'nodev', 'rw']);
    expect(mounts.find((m) => m.destination === '/sys/fs/cgroup')?.options).toContain('rw');
  });

  it('binds the pod files and the pod /dev/shm, read-only with a read-only rootfs', async () => {
    const { mounts } = await containerMounts(
      base({
        readonlyRootfs: true,
        hostsPath: join(dir, 'hosts'),
        resolvPath: join(dir, 'resolv.conf'),
        hostnamePath: join(dir, 'hostname'),
        shmPath: join(dir, 'shm'),
      }),
    );
    expect(mounts.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/dev/shm']);
    const byDest = Object.fromEntries(mounts.map((m) => [m.destination, m]));
    expect(byDest['/etc/hosts']).toEqual({ destination: '/etc/hosts', type: 'bind', source: join(dir, 'hosts'), options: ['rbind', 'rprivate', 'ro'] });
    expect(byDest['/dev/shm']).toEqual({ destination: '/dev/shm', type: 'bind', source: join(dir, 'shm'), options: ['rbind', 'rprivate', 'rw'] });
  });

  it('skips pod files that do not exist and shares the host /dev/shm for ipc NODE', async () => {
    const { mounts } = await containerMounts(base({ hostsPath: join(dir, 'nope'), ipcMode: 'NODE', shmPath: join(dir, 'shm') }));
    expect(mounts.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/dev/shm']);
    expect(mounts.at(-1)?.source).toBe('/dev/shm');
  });

  it('lets a CRI mount replace a default or pod mount at the same path', async () => {
    const data = join(dir, 'data');
    const { mounts } = await containerMounts(
      base({
        hostsPath: join(dir, 'hosts'),
        criMounts: [mount({ containerPath: '/etc/hosts', hostPath: data, readonly: true }), mount({ containerPath: '/sys/fs/cgroup', hostPath: data })],
      }),
    );
    expect(mounts.filter((m) => m.destination === '/etc/hosts')).toEqual([{ destination: '/etc/hosts', type: 'bind', source: data, options: ['rbind', 'rprivate', 'ro'] }]);
    expect(mounts.filter((m) => m.destination === '/sys/fs/cgroup')).toEqual([{ destination: '/sys/fs/cgroup', type: 'bind', source: data, options: ['rbind', 'rprivate', 'rw'] }]);
  });

  it('drops every /dev default under a CRI /dev mount', async () => {
    const { mounts } = await containerMounts(base({ criMounts: [mount({ containerPath: '/dev', hostPath: join(dir, 'data') })] }));
    expect(mounts.map((m) => m.destination)).toEqual(['/proc', '/sys', '/sys/fs/cgroup', '/dev']);
  });

  it('orders CRI mounts shallow first, keeping kubelet order at equal depth', async () => {
    const h = join(dir, 'data');
    const { mounts } = await containerMounts(
      base({ criMounts: ['/a/b/c', '/z', '/a', '/a/b'].map((p) => mount({ containerPath: p, hostPath: h })) }),
    );
    expect(mounts.slice(DEFAULTS.length).map((m) => m.destination)).toEqual(['/z', '/a', '/a/b', '/a/b/c']);
  });

  it('creates a missing host directory and resolves host symlinks', async () => {
    const missing = join(dir, 'new', 'deep');
    const link = join(dir, 'link');
    symlinkSync(join(dir, 'data'), link);
    const { mounts } = await containerMounts(
      base({ criMounts: [mount({ containerPath: '/new', hostPath: missing }), mount({ containerPath: '/linked', hostPath: link })] }),
    );
    expect(statSync(missing).isDirectory()).toBe(true);
    expect(mounts.find((m) => m.destination === '/linked')?.source).toBe(join(dir, 'data'));
  });

  it('handles recursive read-only mounts', async () => {
    const h = join(dir, 'data');
    const rro = mount({ containerPath: '/r', hostPath: h, readonly: true, recursiveReadOnly: true });
    await expect(containerMounts(base({ criMounts: [rro] }))).rejects.toThrow(/mounts\[0\]: recursive read-only mounts are not supported/);
    const ok = await containerMounts(base({ criMounts: [rro], recursiveReadOnlySupported: true }));
    expect(ok.mounts.at(-1)?.options).toEqual(['rbind', 'rprivate', 'rro']);
    await expect(containerMounts(base({ criMounts: [{ ...rro, readonly: false }], recursiveReadOnlySupported: true }))).rejects.toThrow(/recursiveReadOnly needs readonly/);
    await expect(
      containerMounts(base({ criMounts: [{ ...rro, propagation: 'PROPAGATION_HOST_TO_CONTAINER' }], recursiveReadOnlySupported: true })),
    ).rejects.toThrow(/need PROPAGATION_PRIVATE/);
  });

  const invalid: [string, Parameters<typeof mount>[0], RegExp][] = [
    ['relative containerPath', { containerPath: 'data', hostPath: '/tmp' }, /mounts\[0\].containerPath "data" must be an absolute, clean path/],
    ['containerPath with ..', { containerPath: '/data/../etc', hostPath: '/tmp' }, /mounts\[0\].containerPath "\/data\/..\/etc"/],
    ['containerPath with trailing /', { containerPath: '/data/', hostPath: '/tmp' }, /containerPath "\/data\/"/],
    ['relative hostPath', { containerPath: '/data', hostPath: 'tmp' }, /mounts\[0\].hostPath "tmp"/],
    ['hostPath with //', { containerPath: '/data', hostPath: '/tmp//x' }, /mounts\[0\].hostPath "\/tmp\/\/x"/],
    ['image volume with a hostPath', { containerPath: '/data', hostPath: '/tmp', image: IMAGE }, /hostPath "\/tmp" and image "busybox" are mutually exclusive/],
    ['image volume nobody mounted', { containerPath: '/data', hostPath: '', image: IMAGE }, /image volume "busybox" is not mounted/],
    ['imageSubPath without an image', { containerPath: '/data', hostPath: '/tmp', imageSubPath: 'etc' }, /imageSubPath is set but mounts\[0\]\.image is not/],
    ['id-mapped outside a user-namespaced pod', { containerPath: '/data', hostPath: '/tmp', uidMappings: [{ hostId: 1, containerId: 0, length: 1 }] }, /mounts\[0\]: id-mapped mounts .* need a pod with a user namespace/],
  ];
  it('binds an image volume from where it is mounted: read-only, nosuid, nodev, noexec, private, whatever was asked', async () => {
    const { mounts } = await containerMounts(base({
      criMounts: [mount({ containerPath: '/vol', hostPath: '', image: IMAGE, readonly: false, propagation: 'PROPAGATION_BIDIRECTIONAL' })],
      imageVolumeSources: new Map([[0, join(dir, 'data')]]),
    }));
    expect(mounts.find((m) => m.destination === '/vol')).toEqual({
      destination: '/vol', type: 'bind', source: join(dir, 'data'), options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev', 'noexec'],
    });
  });

  it('passes a user-namespaced pod\'s id mappings on to the runtime, and wants both', async () => {
    const maps = [{ hostId: 100000, containerId: 0, length: 65536 }];
    const pod = { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] };
    const r = await containerMounts(base({ podUserns: pod, criMounts: [mount({ containerPath: '/data', hostPath: '/tmp', uidMappings: maps, gidMappings: maps })] }));
    const oci = [{ containerID: 0, hostID: 100000, size: 65536 }];
    expect(r.mounts.find((m) => m.destination === '/data')).toMatchObject({ source: '/tmp', uidMappings: oci, gidMappings: oci });
    const half = containerMounts(base({ podUserns: pod, criMounts: [mount({ containerPath: '/data', hostPath: '/tmp', uidMappings: maps })] }));
    await expect(half).rejects.toThrow(/mounts\[0\].gidMappings: an id-mapped mount needs both/);
  });

  it('binds an image volume of a user-namespaced pod as it is (already mapped with the pod\'s maps), refusing other maps', async () => {
    const pod = { uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] };
    const maps = [{ hostId: 100000, containerId: 0, length: 65536 }];
    const vol = (m: typeof maps) => mount({ containerPath: '/vol', hostPath: '', image: IMAGE, readonly: true, uidMappings: m, gidMappings: m });
    const sources = new Map([[0, join(dir, 'data')]]);
    const r = await containerMounts(base({ podUserns: pod, criMounts: [vol(maps)], imageVolumeSources: sources }));
    // No uidMappings for the runtime: an overlay cannot be idmapped a second time.
    expect(r.mounts.find((m) => m.destination === '/vol')).toEqual({
      destination: '/vol', type: 'bind', source: join(dir, 'data'), options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev', 'noexec'],
    });
    const other = containerMounts(base({ podUserns: pod, criMounts: [vol([{ hostId: 200000, containerId: 0, length: 65536 }])], imageVolumeSources: sources }));
    await expect(other).rejects.toThrow(/mounts\[0\]: image volume .* only be mapped with the pod's own uid\/gid mappings/);
  });

  for (const [name, m, msg] of invalid) {
    it(`rejects ${name}`, async () => {
      const p = containerMounts(base({ criMounts: [mount(m)] }));
      await expect(p).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(p).rejects.toThrow(msg);
    });
  }

  describe('checks every mount before it creates any host directory', () => {
    // kubelet's order: a good mount whose host directory is missing (and would be created),
    // then a bad one. Each bad one used to be found only after the first directory was made.
    const bad: [string, () => Parameters<typeof mount>[0], Function, RegExp][] = [
      ['recursiveReadOnly without readonly', () => ({ containerPath: '/b', hostPath: join(dir, 'data'), recursiveReadOnly: true }), InvalidArgumentError, /mounts\[1\]: recursiveReadOnly needs readonly/],
      ['recursive read-only the handler cannot do', () => ({ containerPath: '/b', hostPath: join(dir, 'data'), readonly: true, recursiveReadOnly: true }), InvalidArgumentError, /mounts\[1\]: recursive read-only mounts are not supported/],
      ['an unknown propagation', () => ({ containerPath: '/b', hostPath: join(dir, 'data'), propagation: 'PROPAGATION_SIDEWAYS' as never }), InvalidArgumentError, /mounts\[1\].propagation PROPAGATION_SIDEWAYS is not a known/],
      ['a hostPath under a file', () => ({ containerPath: '/b', hostPath: join(dir, 'hosts', 'sub') }), FailedPreconditionError, /mounts\[1\].hostPath .*hosts\/sub does not exist and cannot be created/],
      ['a hostPath through a dangling symlink', () => ({ containerPath: '/b', hostPath: join(dir, 'dangling', 'sub') }), FailedPreconditionError, /mounts\[1\].hostPath .* cannot be created: .*dangling is a symlink to a missing path/],
    ];
    for (const [name, second, cls, msg] of bad) {
      it(`refuses ${name} and leaves the first mount's directory uncreated`, async () => {
        const before = readdirSync(dir).sort();
        const good = mount({ containerPath: '/a', hostPath: join(dir, 'created', 'deep') });
        const p = containerMounts(base({ criMounts: [good, mount(second())] }));
        await expect(p).rejects.toBeInstanceOf(cls);
        await expect(p).rejects.toThrow(msg);
        expect(existsSync(join(dir, 'created'))).toBe(false);
        expect(readdirSync(dir).sort()).toEqual(before);
      });
    }
  });

  it('rejects the same containerPath twice', async () => {
    const m = mount({ containerPath: '/d', hostPath: join(dir, 'data') });
    await expect(containerMounts(base({ criMounts: [m, m] }))).rejects.toThrow(/mounts\[1\]: containerPath \/d is mounted twice/);
  });

  it('accepts selinuxRelabel without SELinux', async () => {
    const { mounts } = await containerMounts(base({ criMounts: [mount({ containerPath: '/d', hostPath: join(dir, 'data'), selinuxRelabel: true })] }));
    expect(mounts.at(-1)?.destination).toBe('/d');
  });
});

describe('mount-info', () => {
  it('unescapes mount points', () => {
    const [m] = parseMountInfo('36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n');
    expect(m).toEqual({ mountPoint: '/mnt/a b', optional: ['master:1'] });
  });
});
