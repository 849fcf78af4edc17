// Files read from an image's layers without mounting them (CreateContainer's user lookup) are
// what a real overlay mount of those layers shows (root: whiteouts are 0:0 character devices,
// opaque directories a trusted.* xattr): a whiteout hides a lower file, an opaque directory the
// whole lower directory, a file a lower directory, and symlinks resolve in the merged view.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRootfsFile } from '../../src/container/oci-spec/rootfs-path.js';
import { resolveUser } from '../../src/container/oci-spec/user.js';
import { OPAQUE_XATTR } from '../../src/snapshot/overlay-lookup.js';
import { mountReadOnlyOverlay, unmountOverlay } from '../../src/snapshot/overlay-mount.js';
import { lsetxattr, mknod, S_IFCHR } from '../../src/sys/libc.js';

describe('reading an image\'s files from its layers, against a real overlay mount of them', () => {
  let dir = '';
  let merged = '';
  let layers: string[] = [];

  const file = (layer: string, path: string, text: string) => {
    mkdirSync(dirname(join(layer, path)), { recursive: true });
    writeFileSync(join(layer, path), text);
  };
  const whiteout = (layer: string, path: string) => {
    mkdirSync(dirname(join(layer, path)), { recursive: true });
    mknod(join(layer, path), S_IFCHR, 0, 0);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'crib-overlay-lookup-'));
    const [top, middle, bottom] = ['top', 'middle', 'bottom'].map((n) => join(dir, n)) as [string, string, string];
    // bottom: the base image's files.
    file(bottom, 'etc/passwd', 'root:x:0:0::/root:/bin/sh\nold:x:5:5::/:/bin/sh\n');
    file(bottom, 'etc/group', 'root:x:0:\nold:x:5:\n');
    file(bottom, 'etc/shadow', 'base\n');
    file(bottom, 'srv/data/file', 'base data\n');
    file(bottom, 'opt/tool', 'a file\n');
    // middle: /etc made again (opaque: nothing of bottom's /etc shows), a user added.
    file(middle, 'etc/passwd', 'root:x:0:0::/root:/bin/sh\napp:x:1234:1234::/:/bin/sh\n');
    lsetxattr(join(middle, 'etc'), OPAQUE_XATTR, 'y');
    file(middle, 'usr/share/base/group', 'root:x:0:\napp:x:1234:\nextra:x:99:app\n');
    // top: /etc/group a symlink into /usr (of the middle layer), /srv/data deleted, /opt/tool a dir now.
    mkdirSync(join(top, 'etc'), { recursive: true });
    symlinkSync('../usr/share/base/group', join(top, 'etc', 'group'));
    whiteout(top, 'srv/data');
    file(top, 'opt/tool/inside', 'in the new dir\n');
    layers = [top, middle, bottom];
    merged = join(dir, 'merged');
    mkdirSync(merged);
    await mountReadOnlyOverlay(layers, merged, dir);
  });
  afterAll(async () => {
    if (merged) await unmountOverlay(merged);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const throughMount = (path: string): string | undefined => {
    try {
      return readFileSync(join(merged, path), 'utf8');
    } catch {
      return undefined;
    }
  };

  it('reads what the mount shows, and misses what it does not', async () => {
    for (const path of ['/etc/passwd', '/etc/group', '/etc/shadow', '/srv/data/file', '/opt/tool', '/opt/tool/inside', '/usr/share/base/group']) {
      expect(await readRootfsFile(layers, path), path).toEqual(throughMount(path));
    }
    // What the cases above are about, spelled out: the kernel agrees with each.
    expect(throughMount('/etc/passwd')).toContain('app:x:1234');
    expect(throughMount('/etc/shadow')).toBeUndefined();
    expect(throughMount('/srv/data/file')).toBeUndefined();
    expect(throughMount('/opt/tool/inside')).toBe('in the new dir\n');
  });

  it('resolves the container user from the layers as from the mounted rootfs', async () => {
    const fromLayers = await resolveUser({ securityContext: null, imageUser: 'app', rootfsLayers: layers });
    expect(fromLayers).toEqual({ uid: 1234, gid: 1234, additionalGids: [99, 1234] });
    expect(await resolveUser({ securityContext: null, imageUser: 'app', rootfsLayers: [merged] })).toEqual(fromLayers);
    // bottom's "old" is under the opaque /etc of the middle layer.
    await expect(resolveUser({ securityContext: null, imageUser: 'old', rootfsLayers: layers })).rejects.toThrow(/not found/);
  });
});
