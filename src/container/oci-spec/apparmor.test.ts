import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import { apparmorChoice, containerApparmorProfile } from './apparmor.js';
import { DEFAULT_APPARMOR_PROFILE, defaultProfileText, profileNameOf } from './apparmor-default-profile.js';
import { profileListed, type AppArmorHost } from './lsm-host.js';
import { securityContext } from './test-fixtures.js';

/** A node's AppArmor as the kernel would answer: these profiles loaded, loads recorded. */
function node(loadedProfiles: string[]): AppArmorHost & { loads: number } {
  const loaded = new Set(loadedProfiles);
  return {
    loads: 0,
    isLoaded: async (name) => loaded.has(name),
    async ensureDefaultProfile() {
      if (!loaded.has(DEFAULT_APPARMOR_PROFILE)) {
        this.loads++;
        loaded.add(DEFAULT_APPARMOR_PROFILE);
      }
    },
  };
}

describe('apparmorChoice', () => {
  it.each([
    [{}, { kind: 'unset' }],
    [{ apparmorProfile: 'runtime/default' }, { kind: 'runtime-default' }],
    [{ apparmorProfile: 'unconfined' }, { kind: 'unconfined' }],
    [{ apparmorProfile: 'localhost/my-prof' }, { kind: 'localhost', name: 'my-prof', field: 'securityContext.apparmorProfile' }],
    [{ apparmor: { profileType: 'RuntimeDefault', localhostRef: '' } }, { kind: 'runtime-default' }],
    [{ apparmor: { profileType: 'Unconfined', localhostRef: '' } }, { kind: 'unconfined' }],
    [{ apparmor: { profileType: 'Localhost', localhostRef: 'p' } }, { kind: 'localhost', name: 'p', field: 'securityContext.apparmor.localhostRef' }],
    // containerd trims a leftover prefix from the new field too.
    [{ apparmor: { profileType: 'Localhost', localhostRef: 'localhost/p' } }, { kind: 'localhost', name: 'p', field: 'securityContext.apparmor.localhostRef' }],
    // The SecurityProfile wins over the deprecated string.
    [{ apparmor: { profileType: 'Unconfined', localhostRef: '' }, apparmorProfile: 'localhost/p' }, { kind: 'unconfined' }],
  ])('%j → %j', (sc, want) => {
    expect(apparmorChoice(securityContext(sc as never))).toEqual(want);
  });

  it.each([
    [{ apparmorProfile: 'docker-default' }, /apparmorProfile "docker-default" is not/],
    [{ apparmorProfile: 'localhost/' }, /needs a profile name/],
    [{ apparmor: { profileType: 'Localhost', localhostRef: '' } }, /needs a profile name/],
    [{ apparmor: { profileType: 'Localhost', localhostRef: 'a b' } }, /is not an AppArmor profile name/],
    [{ apparmor: { profileType: 'Localhost', localhostRef: 'a\nchangeprofile x' } }, /is not an AppArmor profile name/],
    [{ apparmor: { profileType: 'RuntimeDefault', localhostRef: 'p' } }, /only for Localhost/],
  ])('%j is refused', (sc, msg) => {
    expect(() => apparmorChoice(securityContext(sc as never))).toThrow(InvalidArgumentError);
    expect(() => apparmorChoice(securityContext(sc as never))).toThrow(msg);
  });
});

describe('containerApparmorProfile', () => {
  const sc = (s: object) => securityContext(s as never);
  const localhost = sc({ apparmor: { profileType: 'Localhost', localhostRef: 'loaded-one' } });

  it('without AppArmor: nothing applied for unset, RuntimeDefault, Unconfined; Localhost refused', async () => {
    for (const s of [{}, { apparmor: { profileType: 'RuntimeDefault', localhostRef: '' } }, { apparmorProfile: 'unconfined' }]) {
      expect(await containerApparmorProfile(sc(s), false, undefined)).toBeUndefined();
    }
    await expect(containerApparmorProfile(localhost, false, undefined)).rejects.toThrow(FailedPreconditionError);
    await expect(containerApparmorProfile(localhost, false, undefined)).rejects.toThrow(/"loaded-one".*AppArmor is not enabled on this node/);
  });

  it('with AppArmor: unset and RuntimeDefault are crib-default (loaded once), privileged runs without it', async () => {
    const host = node([]);
    expect(await containerApparmorProfile(sc({}), false, host)).toBe('crib-default');
    expect(await containerApparmorProfile(sc({ apparmorProfile: 'runtime/default' }), false, host)).toBe('crib-default');
    expect(host.loads).toBe(1);
    expect(await containerApparmorProfile(sc({}), true, host)).toBeUndefined();
    expect(await containerApparmorProfile(sc({ apparmor: { profileType: 'Unconfined', localhostRef: '' } }), false, host)).toBeUndefined();
  });

  it('with AppArmor: Localhost must be loaded (NOT_FOUND naming it), and applies to privileged containers too', async () => {
    const host = node(['loaded-one']);
    expect(await containerApparmorProfile(localhost, false, host)).toBe('loaded-one');
    expect(await containerApparmorProfile(localhost, true, host)).toBe('loaded-one');
    const missing = sc({ apparmorProfile: 'localhost/not-there' });
    await expect(containerApparmorProfile(missing, false, host)).rejects.toThrow(NotFoundError);
    await expect(containerApparmorProfile(missing, false, host)).rejects.toThrow(/apparmorProfile: AppArmor profile "not-there" is not loaded/);
  });
});

describe('the kernel\'s profile list and labels', () => {
  it('profileListed matches whole names only', () => {
    const list = 'crib-default (enforce)\nfoo//bar (complain)\ncrib-default-2 (enforce)\n';
    expect(profileListed(list, 'crib-default')).toBe(true);
    expect(profileListed(list, 'foo//bar')).toBe(true);
    expect(profileListed(list, 'crib')).toBe(false);
    expect(profileListed(list, 'foo')).toBe(false);
  });
  it('profileNameOf strips the mode', () => {
    expect(profileNameOf('crib-default (enforce)\n')).toBe('crib-default');
    expect(profileNameOf('unconfined\n')).toBe('unconfined');
    expect(profileNameOf('')).toBe('unconfined');
  });
});

describe('crib-default', () => {
  const withIncludes = defaultProfileText({ hasInclude: () => true, daemonProfile: 'unconfined' });
  const bare = defaultProfileText({ hasInclude: () => false, daemonProfile: 'crib daemon' });

  it('denies what a container must not reach', () => {
    for (const rule of [
      'deny mount,', 'deny @{PROC}/* w,', 'deny @{PROC}/sysrq-trigger rwklx,', 'deny @{PROC}/kcore rwklx,',
      'deny @{PROC}/sys/kernel/[^s]* w,', 'deny /sys/kernel/security/** rwklx,', 'deny /sys/firmware/** rwklx,',
      'ptrace (trace, read, tracedby, readby) peer=crib-default,',
    ]) expect(withIncludes).toContain(`  ${rule}`);
    expect(withIncludes).toMatch(/^profile crib-default flags=\(attach_disconnected,mediate_deleted\) \{$/m);
  });

  it('uses the host\'s includes when it has them, defines @{PROC} itself otherwise, and quotes odd peer names', () => {
    expect(withIncludes).toContain('#include <tunables/global>');
    expect(withIncludes).toContain('abi <abi/3.0>,');
    expect(bare).not.toContain('#include');
    expect(bare).toContain('@{PROC}=/proc/');
    expect(bare).toContain('signal (receive) peer="crib daemon",');
  });

  // apparmor_parser compiles without a kernel (-Q); where it is installed, both variants must parse.
  let parser = true;
  try {
    execFileSync('apparmor_parser', ['--version'], { stdio: 'ignore' });
  } catch {
    parser = false;
  }
  it.runIf(parser)('compiles with apparmor_parser', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crib-aa-'));
    try {
      for (const [i, text] of [withIncludes, bare].entries()) {
        const f = join(dir, `p${i}`);
        writeFileSync(f, text);
        execFileSync('apparmor_parser', ['-QK', '-o', '/dev/null', f], { stdio: ['ignore', 'ignore', 'pipe'] });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
