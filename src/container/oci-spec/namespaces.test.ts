import { describe, expect, it } from 'vitest';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors.js';
import { type NamespaceInput, containerNamespaces } from './namespaces.js';
import { namespaceOptions } from './test-fixtures.js';

const pod = { netnsPath: '/run/crib/ns/p/net', ipcnsPath: '/run/crib/ns/p/ipc', utsnsPath: '/run/crib/ns/p/uts', pidnsPath: '/proc/42/ns/pid' };
const input = (o: Parameters<typeof namespaceOptions>[0] | null, extra: Partial<NamespaceInput> = {}): NamespaceInput => ({
  options: o === null ? null : namespaceOptions(o),
  pod,
  cgroupVersion: 1,
  privileged: false,
  ...extra,
});

describe('containerNamespaces', () => {
  const cases: { name: string; in: NamespaceInput; want: unknown[]; ownUts: boolean }[] = [
    {
      name: 'pod network/ipc/uts, own pid',
      in: input({}),
      want: [{ type: 'mount' }, { type: 'network', path: pod.netnsPath }, { type: 'ipc', path: pod.ipcnsPath }, { type: 'uts', path: pod.utsnsPath }, { type: 'pid' }],
      ownUts: false,
    },
    {
      name: 'null options mean kubelet defaults: pod network/ipc, own pid',
      in: input(null),
      want: [{ type: 'mount' }, { type: 'network', path: pod.netnsPath }, { type: 'ipc', path: pod.ipcnsPath }, { type: 'uts', path: pod.utsnsPath }, { type: 'pid' }],
      ownUts: false,
    },
    {
      name: 'null options in a host-network, host-IPC pod: the host network and IPC',
      in: input(null, { pod: { pidnsPath: pod.pidnsPath } }),
      want: [{ type: 'mount' }, { type: 'pid' }],
      ownUts: false,
    },
    {
      name: 'explicit POD pid joins the pod pid namespace',
      in: input({ pid: 'POD' }),
      want: [{ type: 'mount' }, { type: 'network', path: pod.netnsPath }, { type: 'ipc', path: pod.ipcnsPath }, { type: 'uts', path: pod.utsnsPath }, { type: 'pid', path: pod.pidnsPath }],
      ownUts: false,
    },
    {
      name: 'host network, ipc and pid: no entries, host uts',
      in: input({ network: 'NODE', ipc: 'NODE', pid: 'NODE' }, { pod: {} }),
      want: [{ type: 'mount' }],
      ownUts: false,
    },
    {
      name: 'CONTAINER everywhere',
      in: input({ network: 'CONTAINER', ipc: 'CONTAINER', pid: 'CONTAINER' }, { pod: {} }),
      want: [{ type: 'mount' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'pid' }],
      ownUts: true,
    },
    {
      name: 'cgroup namespace on v2 unless privileged',
      in: input({ network: 'NODE', ipc: 'NODE', pid: 'NODE' }, { pod: {}, cgroupVersion: 2 }),
      want: [{ type: 'mount' }, { type: 'cgroup' }],
      ownUts: false,
    },
    {
      name: 'no cgroup namespace for privileged on v2',
      in: input({ network: 'NODE', ipc: 'NODE', pid: 'NODE' }, { pod: {}, cgroupVersion: 2, privileged: true }),
      want: [{ type: 'mount' }],
      ownUts: false,
    },
    {
      name: 'userns NODE is the host user namespace',
      in: input({ network: 'NODE', ipc: 'NODE', pid: 'NODE', usernsOptions: { mode: 'NODE', uids: [], gids: [] } }, { pod: {} }),
      want: [{ type: 'mount' }],
      ownUts: false,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = containerNamespaces(c.in);
      expect(got.namespaces).toEqual(c.want);
      expect(got.ownUts).toBe(c.ownUts);
    });
  }

  it('fails when a POD namespace has no path to join', () => {
    expect(() => containerNamespaces(input({}, { pod: {} }))).toThrow(FailedPreconditionError);
    expect(() => containerNamespaces(input({}, { pod: {} }))).toThrow(/namespaceOptions.network is POD but the pod has no network namespace/);
    expect(() => containerNamespaces(input({ pid: 'POD' }, { pod: { ...pod, pidnsPath: undefined } }))).toThrow(/namespaceOptions.pid is POD/);
  });

  it("joins the target container's PID namespace in TARGET mode (kubectl debug --target)", () => {
    const got = containerNamespaces(input({ pid: 'TARGET', targetId: 'c1' }, { targetPidnsPath: '/proc/77/ns/pid' }));
    expect(got.namespaces).toContainEqual({ type: 'pid', path: '/proc/77/ns/pid' });
    expect(got.namespaces.filter((n) => n.type === 'pid')).toHaveLength(1);
  });

  it("refuses TARGET mode when the target's PID namespace is not known, naming the target", () => {
    const p = () => containerNamespaces(input({ pid: 'TARGET', targetId: 'c1' }));
    expect(p).toThrow(FailedPreconditionError);
    expect(p).toThrow(/namespaceOptions.pid TARGET \(targetId "c1"\): the target container's PID namespace is not known/);
  });

  const maps = [{ hostId: 100000, containerId: 0, length: 65536 }];
  const userns = { path: '/run/crib/ns/p/user', uids: maps, gids: maps };
  const oci = [{ containerID: 0, hostID: 100000, size: 65536 }];

  it('joins the pod\'s user namespace with its maps (POD, or no options in a user-namespaced pod)', () => {
    for (const o of [{ usernsOptions: { mode: 'POD' as const, uids: maps, gids: maps } }, { usernsOptions: { mode: 'POD' as const, uids: [], gids: [] } }, null]) {
      const r = containerNamespaces(input(o, { pod: { ...pod, userns } }));
      expect(r.namespaces).toContainEqual({ type: 'user', path: userns.path });
      expect(r.uidMappings).toEqual(oci);
      expect(r.gidMappings).toEqual(oci);
    }
  });

  it('refuses a user namespace that disagrees with the pod\'s, and CONTAINER mode', () => {
    const other = [{ hostId: 200000, containerId: 0, length: 65536 }];
    const cases: [Parameters<typeof namespaceOptions>[0], Partial<NamespaceInput>['pod'], unknown, RegExp][] = [
      [{ usernsOptions: { mode: 'POD', uids: maps, gids: maps } }, pod, FailedPreconditionError, /the pod sandbox has no user namespace/],
      [{ usernsOptions: { mode: 'NODE', uids: [], gids: [] } }, { ...pod, userns }, InvalidArgumentError, /mode NODE: the pod runs in its own user namespace/],
      [{ usernsOptions: { mode: 'POD', uids: other, gids: maps } }, { ...pod, userns }, InvalidArgumentError, /differ from the pod's/],
      [{ usernsOptions: { mode: 'CONTAINER', uids: maps, gids: maps } }, { ...pod, userns }, InvalidArgumentError, /mode CONTAINER: a user namespace is per pod/],
    ];
    for (const [o, p, cls, msg] of cases) {
      const f = () => containerNamespaces(input(o, { pod: p }));
      expect(f).toThrow(cls as typeof Error);
      expect(f).toThrow(msg);
    }
  });
});
