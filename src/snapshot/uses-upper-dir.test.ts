// Snapshotter.remove's check that an active snapshot is no longer mounted, on mountinfo texts.
import { describe, expect, it } from 'vitest';
import { usesUpperDir } from './snapshotter.js';

const overlay = (id: number, upper: string) =>
  `${id} 1 0:${id} / /run/crib/c${id}/rootfs rw,relatime - overlay overlay rw,lowerdir=/l/a:/l/b,upperdir=${upper},workdir=/w/${id},index=off`;
const info = [
  '20 1 0:20 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory',
  overlay(30, '/snap/active/k10/fs'),
  overlay(31, 'active/k2/fs'),
  // Not an overlay, though its mount point's path has the text in it.
  '40 1 0:40 / /mnt/upperdir=/snap/active/k3/fs rw - tmpfs tmpfs rw',
].join('\n');

describe('usesUpperDir', () => {
  it('finds an overlay by its upper dir, absolute or relative to the snapshot root', () => {
    expect(usesUpperDir(info, ['/snap/active/k10/fs', 'active/k10/fs'])).toBe(true);
    expect(usesUpperDir(info, ['/snap/active/k2/fs', 'active/k2/fs'])).toBe(true);
  });

  it('matches whole options only: a key that is a prefix of a mounted one is not mounted', () => {
    expect(usesUpperDir(info, ['/snap/active/k1/fs', 'active/k1/fs'])).toBe(false);
    expect(usesUpperDir(info, ['/snap/active/k1', 'active/k1'])).toBe(false);
  });

  it('ignores the text outside an overlay\'s options, and a text without it at all', () => {
    expect(usesUpperDir(info, ['/snap/active/k3/fs'])).toBe(false);
    expect(usesUpperDir(info, ['/snap/active/gone/fs', 'active/gone/fs'])).toBe(false);
    expect(usesUpperDir('', ['/snap/active/k10/fs'])).toBe(false);
  });
});
