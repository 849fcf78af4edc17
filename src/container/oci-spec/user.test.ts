// User resolution against real /etc/passwd and /etc/group files in temp rootfs directories,
// including symlinks that must resolve inside the rootfs, never on the node.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import type { LinuxContainerSecurityContext__Output } from '../../gen/runtime/v1/LinuxContainerSecurityContext.js';
import { readRootfsFile, resolveInLayers } from './rootfs-path.js';
import { securityContext } from './test-fixtures.js';
import { resolveUser } from './user.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1000::/home/app:/bin/sh\nweb:x:33:33::/var/www:/bin/false\nbroken line\n';
const GROUP = 'root:x:0:\nwheel:x:10:app,web\nstaff:x:50:app\napp:x:1000:app\nwww:x:33:\n';

let base = '';
let counter = 0;
let std = '';

function makeRootfs(files: Record<string, string>, links: Record<string, string> = {}): string {
  const root = join(base, `rootfs-${counter++}`);
  mkdirSync(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  for (const [path, target] of Object.entries(links)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    symlinkSync(target, join(root, path));
  }
  return root;
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), `crib-spec-user-${process.pid}-`));
  std = makeRootfs({ '/etc/passwd': PASSWD, '/etc/group': GROUP });
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

const i64 = (value: string) => ({ value });

describe('resolveUser', () => {
  const cases: { name: string; image?: string; sc?: Partial<LinuxContainerSecurityContext__Output>; want: { uid: number; gid: number; additionalGids: number[] } }[] = [
    { name: 'no user anywhere → root', want: { uid: 0, gid: 0, additionalGids: [0] } },
    { name: 'image USER name', image: 'app', want: { uid: 1000, gid: 1000, additionalGids: [10, 50, 1000] } },
    { name: 'image USER uid found in passwd', image: '1000', want: { uid: 1000, gid: 1000, additionalGids: [10, 50, 1000] } },
    { name: 'image USER uid not in passwd → gid 0', image: '4242', want: { uid: 4242, gid: 0, additionalGids: [0] } },
    { name: 'image USER name:group', image: 'app:staff', want: { uid: 1000, gid: 50, additionalGids: [10, 50] } },
    { name: 'image USER uid:gid', image: '1000:2000', want: { uid: 1000, gid: 2000, additionalGids: [10, 50, 2000] } },
    { name: 'image USER name:gid', image: 'web:7', want: { uid: 33, gid: 7, additionalGids: [7, 10] } },
    { name: 'runAsUser beats the image', image: 'app', sc: { runAsUser: i64('33') }, want: { uid: 33, gid: 33, additionalGids: [10, 33] } },
    { name: 'runAsUser + runAsGroup', sc: { runAsUser: i64('1000'), runAsGroup: i64('3000') }, want: { uid: 1000, gid: 3000, additionalGids: [10, 50, 3000] } },
    { name: 'runAsUsername', sc: { runAsUsername: 'web' }, want: { uid: 33, gid: 33, additionalGids: [10, 33] } },
    {
      name: 'supplementalGroups with Merge',
      image: 'app',
      sc: { supplementalGroups: ['5000', '50'] },
      want: { uid: 1000, gid: 1000, additionalGids: [10, 50, 1000, 5000] },
    },
    {
      name: 'supplementalGroups with Strict ignore /etc/group',
      image: 'app',
      sc: { supplementalGroups: ['5000'], supplementalGroupsPolicy: 'Strict' },
      want: { uid: 1000, gid: 1000, additionalGids: [1000, 5000] },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const user = await resolveUser({
        securityContext: securityContext(c.sc),
        imageUser: c.image,
        rootfsLayers: [std],
      });
      expect(user).toEqual(c.want);
    });
  }

  const errors: { name: string; image?: string; sc?: Partial<LinuxContainerSecurityContext__Output>; cls: Function; msg: RegExp }[] = [
    { name: 'unknown image user', image: 'nobody', cls: InvalidArgumentError, msg: /image USER "nobody": user "nobody" not found/ },
    { name: 'unknown group', image: 'app:nogroup', cls: InvalidArgumentError, msg: /group "nogroup" not found/ },
    { name: 'unknown runAsUsername', sc: { runAsUsername: 'ghost' }, cls: InvalidArgumentError, msg: /runAsUsername: user "ghost"/ },
    { name: 'negative runAsUser', sc: { runAsUser: i64('-1') }, cls: InvalidArgumentError, msg: /runAsUser: uid -1 is out of range/ },
    { name: 'uid above INT32_MAX', image: '4294967296', cls: InvalidArgumentError, msg: /out of range/ },
    { name: 'three-part USER', image: 'a:b:c', cls: InvalidArgumentError, msg: /image USER "a:b:c"/ },
    { name: 'runAsGroup without a user', image: 'app', sc: { runAsGroup: i64('3000') }, cls: InvalidArgumentError, msg: /runAsGroup is set without runAsUser/ },
    { name: 'bad supplemental group', sc: { supplementalGroups: ['x'] }, cls: InvalidArgumentError, msg: /supplementalGroups/ },
  ];
  for (const c of errors) {
    it(`fails: ${c.name}`, async () => {
      const p = resolveUser({ securityContext: securityContext(c.sc), imageUser: c.image, rootfsLayers: [std] });
      await expect(p).rejects.toBeInstanceOf(c.cls);
      await expect(p).rejects.toThrow(c.msg);
    });
  }

  it('works without /etc/passwd for numeric users and fails for names', async () => {
    const bare = makeRootfs({ '/bin/sh': '' });
    expect(await resolveUser({ securityContext: null, imageUser: '1234:99', rootfsLayers: [bare] })).toEqual({ uid: 1234, gid: 99, additionalGids: [99] });
    await expect(resolveUser({ securityContext: null, imageUser: 'app', rootfsLayers: [bare] })).rejects.toThrow(/file missing/);
  });
});

describe('rootfs symlinks resolve inside the rootfs', () => {
  it('follows an absolute /etc/passwd symlink within the rootfs', async () => {
    // /data/passwd does not exist on the node: reading it through the host's root would fail.
    const root = makeRootfs(
      { '/data/passwd': 'svc:x:1234:1234::/:/bin/sh\n', '/data/group': 'svc:x:1234:\nops:x:77:svc\n' },
      { '/etc/passwd': '/data/passwd', '/etc/group': '/data/group' },
    );
    expect(await resolveUser({ securityContext: null, imageUser: 'svc', rootfsLayers: [root] })).toEqual({ uid: 1234, gid: 1234, additionalGids: [77, 1234] });
    expect(resolveInLayers([root], '/etc/passwd')).toBe(join(root, 'data/passwd'));
  });

  it('clamps ".." at the rootfs and follows a symlinked /etc directory', async () => {
    const root = makeRootfs(
      { '/usr/lib/passwd': 'deep:x:4321:4321::/:/bin/sh\n', '/private/etc/group': 'deep:x:4321:\n' },
      { '/etc': '/private/etc', '/private/etc/passwd': '../../../../../../../../usr/lib/passwd' },
    );
    expect(await resolveUser({ securityContext: null, imageUser: 'deep', rootfsLayers: [root] })).toEqual({ uid: 4321, gid: 4321, additionalGids: [4321] });
  });

  it('never reads a node file through an escaping symlink', async () => {
    // /etc/passwd → /etc/shadow-like absolute path that exists on the node but not in the rootfs.
    const root = makeRootfs({}, { '/etc/passwd': '/proc/self/status' });
    expect(await readRootfsFile([root], '/etc/passwd')).toBeUndefined();
    await expect(resolveUser({ securityContext: null, imageUser: 'root', rootfsLayers: [root] })).rejects.toThrow(/not found/);
  });

  it('reports a symlink loop', async () => {
    const root = makeRootfs({}, { '/etc/passwd': '/etc/passwd2', '/etc/passwd2': '/etc/passwd' });
    await expect(resolveUser({ securityContext: null, imageUser: 'app', rootfsLayers: [root] })).rejects.toThrow(/too many levels of symbolic links/);
  });

  it('does not hang on a FIFO planted at /etc/passwd', async () => {
    const root = makeRootfs({ '/etc/group': GROUP });
    execFileSync('mkfifo', [join(root, 'etc/passwd')]);
    expect(await readRootfsFile([root], '/etc/passwd')).toBeUndefined();
    expect(await resolveUser({ securityContext: null, imageUser: '1000', rootfsLayers: [root] })).toEqual({ uid: 1000, gid: 0, additionalGids: [0] });
  });
});

describe('the user is looked up in the layers the rootfs is mounted from, nothing mounted', () => {
  it('reads each file from the top layer that has it, a directory merging across layers', async () => {
    const lower = makeRootfs({ '/etc/passwd': 'app:x:1000:1000::/:/bin/sh\n', '/etc/group': 'app:x:1000:\n' });
    const upper = makeRootfs({ '/etc/passwd': 'app:x:1234:1234::/:/bin/sh\n' });
    // The upper layer's passwd wins; its /etc merges with the lower one's, whose group is seen.
    expect(await resolveUser({ securityContext: null, imageUser: 'app:app', rootfsLayers: [upper, lower] }))
      .toEqual({ uid: 1234, gid: 1000, additionalGids: [1000] });
    expect(resolveInLayers([upper, lower], '/etc/group')).toBe(join(lower, 'etc/group'));
  });

  it('resolves a symlink of one layer in the merged view, inside it', async () => {
    const lower = makeRootfs({ '/data/passwd': 'svc:x:77:77::/:/bin/sh\n', '/etc/hostname': 'x\n' });
    const upper = makeRootfs({}, { '/etc/passwd': '../data/passwd' });
    expect(await resolveUser({ securityContext: null, imageUser: 'svc', rootfsLayers: [upper, lower] }))
      .toEqual({ uid: 77, gid: 77, additionalGids: [77] });
  });

  it('lets a file of an upper layer hide a lower layer\'s directory of the same name', async () => {
    const lower = makeRootfs({ '/etc/passwd': PASSWD });
    const upper = makeRootfs({ '/etc': 'not a directory\n' });
    expect(resolveInLayers([upper, lower], '/etc/passwd')).toBeUndefined();
    await expect(resolveUser({ securityContext: null, imageUser: 'app', rootfsLayers: [upper, lower] })).rejects.toThrow(/file missing/);
  });

  it('reads nothing from an image without layers', async () => {
    expect(await readRootfsFile([], '/etc/passwd')).toBeUndefined();
    expect(await resolveUser({ securityContext: null, imageUser: '', rootfsLayers: [] })).toEqual({ uid: 0, gid: 0, additionalGids: [0] });
  });
});
