import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors.js';
import { DEFAULT_CAPABILITIES } from './capabilities.js';
import type { OciSeccomp } from './oci-types.js';
import { containerSeccomp, convertSeccompProfile, seccompChoice } from './seccomp.js';
import { defaultSeccompProfile } from './seccomp-default-profile.js';
import { securityContext } from './test-fixtures.js';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-spec-seccomp-${process.pid}-`));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const allowed = (p: OciSeccomp, name: string): boolean =>
  (p.syscalls ?? []).some((s) => s.action === 'SCMP_ACT_ALLOW' && s.names.includes(name) && (s.args ?? []).length === 0);
const rulesFor = (p: OciSeccomp, name: string) => (p.syscalls ?? []).filter((s) => s.names.includes(name));

describe('RuntimeDefault profile', () => {
  const p = defaultSeccompProfile(DEFAULT_CAPABILITIES, 'x64');

  it('denies by default with EPERM on the x86 family of architectures', () => {
    expect(p.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(p.defaultErrnoRet).toBe(1);
    expect(p.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  });

  it.each(['read', 'write', 'execve', 'openat', 'futex', 'arch_prctl', 'chroot', 'statx', 'epoll_wait'])(
    'allows %s',
    (name) => expect(allowed(p, name)).toBe(true),
  );

  it.each(['mount', 'umount2', 'unshare', 'setns', 'reboot', 'init_module', 'kexec_load', 'open_by_handle_at', 'bpf', 'add_key', 'keyctl'])(
    'does not allow %s without the capability',
    (name) => expect(allowed(p, name)).toBe(false),
  );

  it('lets clone() create no namespaces and answers clone3 with ENOSYS without CAP_SYS_ADMIN', () => {
    expect(rulesFor(p, 'clone')).toEqual([
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
    ]);
    expect(rulesFor(p, 'clone3')).toEqual([{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
  });

  it('filters personality and socket by argument', () => {
    expect(rulesFor(p, 'personality').map((r) => r.args?.[0]?.value)).toEqual([0, 8, 0x20000, 0x20008, 0xffffffff]);
    expect(rulesFor(p, 'socket').map((r) => [r.args?.[0]?.op, r.args?.[0]?.value])).toEqual([
      ['SCMP_CMP_LT', 38],
      ['SCMP_CMP_EQ', 39],
      ['SCMP_CMP_GT', 40],
    ]);
  });

  it('unlocks syscalls for capabilities in the bounding set', () => {
    const admin = defaultSeccompProfile([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE', 'CAP_SYS_TIME'], 'x64');
    for (const name of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'clone3', 'kcmp', 'ptrace', 'settimeofday']) {
      expect(allowed(admin, name), name).toBe(true);
    }
    expect(rulesFor(admin, 'clone3').some((r) => r.action === 'SCMP_ACT_ERRNO')).toBe(false);
  });

  it('uses the aarch64 architectures and syscalls on arm64', () => {
    const arm = defaultSeccompProfile(DEFAULT_CAPABILITIES, 'arm64');
    expect(arm.architectures).toEqual(['SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64']);
    expect(allowed(arm, 'set_tls')).toBe(true);
    expect(allowed(arm, 'arch_prctl')).toBe(false);
  });
});

describe('seccompChoice', () => {
  const cases: { name: string; sc: Parameters<typeof securityContext>[0]; privileged?: boolean; want: ReturnType<typeof seccompChoice> }[] = [
    { name: 'nothing set → unconfined', sc: {}, want: { kind: 'unconfined' } },
    { name: 'RuntimeDefault', sc: { seccomp: { profileType: 'RuntimeDefault', localhostRef: '' } }, want: { kind: 'runtime-default' } },
    { name: 'Unconfined', sc: { seccomp: { profileType: 'Unconfined', localhostRef: '' } }, want: { kind: 'unconfined' } },
    { name: 'Localhost', sc: { seccomp: { profileType: 'Localhost', localhostRef: '/var/lib/kubelet/seccomp/a.json' } }, want: { kind: 'localhost', path: '/var/lib/kubelet/seccomp/a.json' } },
    { name: 'privileged → unconfined', sc: { seccomp: { profileType: 'RuntimeDefault', localhostRef: '' } }, privileged: true, want: { kind: 'unconfined' } },
    { name: 'deprecated runtime/default', sc: { seccompProfilePath: 'runtime/default' }, want: { kind: 'runtime-default' } },
    { name: 'deprecated docker/default', sc: { seccompProfilePath: 'docker/default' }, want: { kind: 'runtime-default' } },
    { name: 'deprecated localhost/', sc: { seccompProfilePath: 'localhost//etc/p.json' }, want: { kind: 'localhost', path: '/etc/p.json' } },
  ];
  for (const c of cases) it(c.name, () => expect(seccompChoice(securityContext(c.sc), c.privileged ?? false)).toEqual(c.want));

  it('rejects a relative or unclean localhostRef, naming the field', () => {
    expect(() => seccompChoice(securityContext({ seccomp: { profileType: 'Localhost', localhostRef: 'p.json' } }), false)).toThrow(
      /seccomp.localhostRef "p.json" must be an absolute, clean path/,
    );
    expect(() => seccompChoice(securityContext({ seccomp: { profileType: 'Localhost', localhostRef: '/a/../b' } }), false)).toThrow(InvalidArgumentError);
    expect(() => seccompChoice(securityContext({ seccompProfilePath: 'weird' }), false)).toThrow(/seccompProfilePath "weird"/);
  });
});

describe('Localhost profiles', () => {
  const load = (file: string, bounding = DEFAULT_CAPABILITIES) =>
    containerSeccomp({
      securityContext: securityContext({ seccomp: { profileType: 'Localhost', localhostRef: file } }),
      privileged: false,
      bounding,
      arch: 'x64',
    });

  it('loads an OCI-format profile as is', async () => {
    const oci = {
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [
        { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
      ],
    };
    const file = join(dir, 'oci.json');
    writeFileSync(file, JSON.stringify(oci));
    expect(await load(file)).toEqual(oci);
  });

  it("converts Docker's format: name, includes/excludes, archMap", async () => {
    const docker = {
      defaultAction: 'SCMP_ACT_ERRNO',
      archMap: [
        { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
        { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
      ],
      syscalls: [
        { name: 'read', action: 'SCMP_ACT_ALLOW', args: [] },
        { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
        { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
        { names: ['set_tls'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
        { names: ['clone'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_SYS_ADMIN'] } },
        { names: ['future_call'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '99.0' } },
        { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
      ],
    };
    const file = join(dir, 'docker.json');
    writeFileSync(file, JSON.stringify(docker));
    expect(await load(file)).toEqual({
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ALLOW', args: [] },
        { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW' },
        { names: ['clone'], action: 'SCMP_ACT_ALLOW' },
        { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
      ],
    });
    const admin = await load(file, [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']);
    expect(admin?.syscalls?.map((s) => s.names[0])).toEqual(['read', 'mount', 'arch_prctl', 'mkdir']);
  });

  it('fails with FailedPrecondition naming an unreadable profile', async () => {
    const missing = join(dir, 'missing.json');
    await expect(load(missing)).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(load(missing)).rejects.toThrow(`seccomp profile ${missing} cannot be read: ENOENT`);
    await expect(load(dir)).rejects.toThrow(/EISDIR/);
  });

  it('fails with InvalidArgument naming a malformed profile and the bad entry', async () => {
    const cases: [string, string, RegExp][] = [
      ['notjson.json', '{nope', /is not valid JSON/],
      ['array.json', '[]', /top level is not a JSON object/],
      ['action.json', JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'ALLOW' }] }), /syscalls\[0\].action: unknown action "ALLOW"/],
      ['default.json', JSON.stringify({ defaultAction: 'deny' }), /defaultAction: unknown action "deny"/],
      ['noname.json', JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ERRNO' }] }), /syscalls\[0\]: needs "names"/],
      ['op.json', JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'EQ' }] }] }), /syscalls\[0\].args\[0\]: unknown op "EQ"/],
      ['index.json', JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 9, value: 1, op: 'SCMP_CMP_EQ' }] }] }), /index must be 0..5/],
    ];
    for (const [name, text, msg] of cases) {
      const file = join(dir, name);
      writeFileSync(file, text);
      const p = load(file);
      await expect(p).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(p).rejects.toThrow(msg);
      await expect(load(file)).rejects.toThrow(file);
    }
  });

  it('skips minKernel entries only when the kernel is older', () => {
    const profile = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['new'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.6' } }] };
    expect(convertSeccompProfile(profile, 'p', [], 'x64', '5.10.0-20-amd64').syscalls).toHaveLength(1);
    expect(convertSeccompProfile(profile, 'p', [], 'x64', '5.4.0').syscalls).toHaveLength(0);
    expect(convertSeccompProfile(profile, 'p', [], 'x64', '6.1.0').syscalls).toHaveLength(1);
  });
});
