// Bind mounts against real host mounts (root: it makes tmpfs mounts): propagation needs a shared
// or slave source, a source that does not exist yet is checked on the mount it will be created
// on, and when one source directory cannot be made, those made for the same container go again.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailedPreconditionError } from '../../../src/errors.js';
import { lookupMount } from '../../../src/container/oci-spec/mount-info.js';
import { type MountInput, containerMounts } from '../../../src/container/oci-spec/mounts.js';
import { mount } from '../../../src/container/oci-spec/test-fixtures.js';

let dir = '';
let shared = '';
let slave = '';
let priv = '';
let readonly = '';
const mounted: string[] = [];

function tmpfs(path: string, ...opts: string[]): void {
  mkdirSync(path);
  execFileSync('mount', ['-t', 'tmpfs', '-o', ['size=1m', ...opts].join(','), 'tmpfs', path]);
  mounted.unshift(path);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `crib-mounts-host-${process.pid}-`));
  shared = join(dir, 'shared');
  slave = join(dir, 'slave');
  priv = join(dir, 'private');
  readonly = join(dir, 'readonly');
  tmpfs(shared);
  execFileSync('mount', ['--make-shared', shared]);
  mkdirSync(slave);
  execFileSync('mount', ['--bind', shared, slave]);
  mounted.unshift(slave);
  execFileSync('mount', ['--make-slave', slave]);
  mkdirSync(join(shared, 'sub'));
  tmpfs(priv);
  execFileSync('mount', ['--make-private', priv]);
  tmpfs(readonly, 'ro');
});

afterAll(() => {
  for (const m of mounted) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // already gone
    }
  }
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

describe('containerMounts on real host mounts', () => {
  it('maps propagation and checks the host mount can propagate', async () => {
    const h2c = await containerMounts(base({ criMounts: [mount({ containerPath: '/s', hostPath: join(shared, 'sub'), propagation: 'PROPAGATION_HOST_TO_CONTAINER' })] }));
    expect(h2c.mounts.at(-1)?.options).toEqual(['rbind', 'rslave', 'rw']);
    expect(h2c.rootfsPropagation).toBe('rslave');
    const fromSlave = await containerMounts(base({ criMounts: [mount({ containerPath: '/s', hostPath: slave, propagation: 'PROPAGATION_HOST_TO_CONTAINER' })] }));
    expect(fromSlave.rootfsPropagation).toBe('rslave');
    const bidi = await containerMounts(
      base({
        criMounts: [
          mount({ containerPath: '/s', hostPath: slave, propagation: 'PROPAGATION_HOST_TO_CONTAINER' }),
          mount({ containerPath: '/b', hostPath: shared, propagation: 'PROPAGATION_BIDIRECTIONAL' }),
        ],
      }),
    );
    expect(bidi.mounts.at(-1)?.options).toEqual(['rbind', 'rshared', 'rw']);
    expect(bidi.rootfsPropagation).toBe('rshared');

    await expect(containerMounts(base({ criMounts: [mount({ containerPath: '/p', hostPath: priv, propagation: 'PROPAGATION_HOST_TO_CONTAINER' })] }))).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(containerMounts(base({ criMounts: [mount({ containerPath: '/p', hostPath: slave, propagation: 'PROPAGATION_BIDIRECTIONAL' })] }))).rejects.toThrow(
      /mounts\[0\]: hostPath .* is not shared, so BIDIRECTIONAL/,
    );
  });

  it('checks a source that does not exist yet on the mount it will be created on', async () => {
    const onShared = join(shared, 'new', 'dir');
    const { mounts } = await containerMounts(base({ criMounts: [mount({ containerPath: '/s', hostPath: onShared, propagation: 'PROPAGATION_BIDIRECTIONAL' })] }));
    expect(mounts.at(-1)).toEqual({ destination: '/s', type: 'bind', source: onShared, options: ['rbind', 'rshared', 'rw'] });
    expect(statSync(onShared).isDirectory()).toBe(true);

    // A private mount: refused before the first (good) mount's directory or its own is made.
    const good = mount({ containerPath: '/a', hostPath: join(dir, 'good', 'deep') });
    const onPrivate = mount({ containerPath: '/b', hostPath: join(priv, 'x', 'y'), propagation: 'PROPAGATION_BIDIRECTIONAL' });
    await expect(containerMounts(base({ criMounts: [good, onPrivate] }))).rejects.toThrow(/mounts\[1\]: hostPath .*private\/x\/y is on mount .*private which is not shared/);
    expect(existsSync(join(dir, 'good'))).toBe(false);
    expect(existsSync(join(priv, 'x'))).toBe(false);
  });

  it('removes the directories it made when a later one cannot be made', async () => {
    const first = mount({ containerPath: '/a', hostPath: join(dir, 'made', 'deep') });
    const second = mount({ containerPath: '/b', hostPath: join(readonly, 'cannot') });
    const p = containerMounts(base({ criMounts: [first, second] }));
    await expect(p).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(p).rejects.toThrow(/mounts\[1\].hostPath .*readonly\/cannot does not exist and cannot be created: EROFS on mkdir .*readonly\/cannot/);
    expect(existsSync(join(dir, 'made'))).toBe(false);
  });
});

describe('mount-info', () => {
  it('finds the innermost mount and its propagation', async () => {
    expect((await lookupMount(join(shared, 'sub')))?.mountPoint).toBe(shared);
    expect((await lookupMount(slave))?.optional.some((o) => o.startsWith('master:'))).toBe(true);
    expect(existsSync('/proc/self/mountinfo')).toBe(true);
  });
});
