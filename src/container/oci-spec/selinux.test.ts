import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import type { SELinuxOption__Output } from '../../gen/runtime/v1/SELinuxOption.js';
import { podLevel } from '../../sandbox/mcs-levels.js';
import { FALLBACK_DEFAULTS, checkRelabelPath, parseLxcContexts, relabelMounts, selinuxLabels } from './selinux.js';

const opts = (o: Partial<SELinuxOption__Output> = {}): SELinuxOption__Output => ({ user: '', role: '', type: '', level: '', ...o });
const base = { podLevel: podLevel('pod-1'), defaults: FALLBACK_DEFAULTS, pod: null, container: null };

describe('parseLxcContexts', () => {
  it('reads the process and file contexts, quoted or not', () => {
    const text = '# comment\nprocess = "system_u:system_r:container_t:s0"\ncontent = "system_u:object_r:virt_var_lib_t:s0"\nfile=system_u:object_r:container_file_t:s0\n';
    expect(parseLxcContexts(text)).toEqual({ process: 'system_u:system_r:container_t:s0', file: 'system_u:object_r:container_file_t:s0' });
  });
});

describe('selinuxLabels', () => {
  it('no options: the defaults at the pod\'s own level', () => {
    const lvl = podLevel('pod-1');
    expect(selinuxLabels(base)).toEqual({
      processLabel: `system_u:system_r:container_t:${lvl}`,
      mountLabel: `system_u:object_r:container_file_t:${lvl}`,
    });
  });

  it('container options go over the defaults: user and level on both labels, role and type on the process', () => {
    const l = selinuxLabels({ ...base, container: opts({ user: 'u_u', role: 'r_r', type: 'spc_t', level: 's0:c1,c2' }) });
    expect(l).toEqual({ processLabel: 'u_u:r_r:spc_t:s0:c1,c2', mountLabel: 'u_u:object_r:container_file_t:s0:c1,c2' });
  });

  it('a container without options takes its pod\'s; a container without a level takes the pod\'s level', () => {
    const pod = opts({ type: 'pod_t', level: 's0:c7,c9' });
    expect(selinuxLabels({ ...base, pod })).toEqual({
      processLabel: 'system_u:system_r:pod_t:s0:c7,c9', mountLabel: 'system_u:object_r:container_file_t:s0:c7,c9',
    });
    expect(selinuxLabels({ ...base, pod, container: opts({ type: 'other_t' }) }).processLabel).toBe('system_u:system_r:other_t:s0:c7,c9');
  });

  it('uses the policy\'s defaults when given', () => {
    const l = selinuxLabels({ ...base, container: opts({ level: 's0' }), defaults: { process: 'a:b:c_t:s0', file: 'a:object_r:f_t:s0' } });
    expect(l).toEqual({ processLabel: 'a:b:c_t:s0', mountLabel: 'a:object_r:f_t:s0' });
  });

  it.each([
    [opts({ type: 'a:b' }), /selinuxOptions.type "a:b" is not an SELinux type name/],
    [opts({ user: 'x y' }), /selinuxOptions.user/],
    [opts({ level: 's0:c1,c2"' }), /selinuxOptions.level/],
    [opts({ level: 's0\ncontext' }), /selinuxOptions.level/],
  ])('refuses %j', (container, msg) => {
    expect(() => selinuxLabels({ ...base, container })).toThrow(InvalidArgumentError);
    expect(() => selinuxLabels({ ...base, container })).toThrow(msg);
  });
});

describe('selinux_relabel refuse-list', () => {
  it.each(['/', '/usr', '/etc', '/etc/', '/var/lib', '/home', '/home/alice', '/root', '/tmp', '/usr/lib'])('refuses %s', (p) => {
    expect(() => checkRelabelPath(p, 'mounts[0]')).toThrow(/selinux_relabel of .* is refused: relabelling a system directory/);
  });
  it.each(['/var/lib/kubelet/pods/x/volumes/v', '/srv/data', '/home/alice/project', '/tmp/vol'])('allows %s', (p) => {
    expect(() => checkRelabelPath(p, 'mounts[0]')).not.toThrow();
  });

  it('resolves symlinks before the check: a link to /etc is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crib-relabel-'));
    try {
      symlinkSync('/etc', join(dir, 'innocent'));
      await expect(relabelMounts([{ hostPath: join(dir, 'innocent'), selinuxRelabel: true }], 'u:object_r:t:s0'))
        .rejects.toThrow(/mounts\[0\]: selinux_relabel of \/etc is refused/);
      // Mounts that do not ask are never looked at.
      await relabelMounts([{ hostPath: join(dir, 'innocent'), selinuxRelabel: false }], 'u:object_r:t:s0');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
