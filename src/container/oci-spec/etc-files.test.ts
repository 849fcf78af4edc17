// The per-image cache of /etc/passwd and /etc/group (etc-files.ts) over real layer directories:
// what it keeps, for how long, and what it never keeps.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageEtcFilesCache, readEtcFiles } from './etc-files.js';
import { resolveUser } from './user.js';

let base = '';
let counter = 0;

/** A layer directory with an /etc/passwd naming `user` as uid `uid` (and a group of the same). */
function layer(user: string, uid: number): string {
  const dir = join(base, `layer-${counter++}`);
  mkdirSync(join(dir, 'etc'), { recursive: true });
  writePasswd(dir, user, uid);
  writeFileSync(join(dir, 'etc', 'group'), `${user}:x:${uid}:\n`);
  return dir;
}

function writePasswd(dir: string, user: string, uid: number): void {
  writeFileSync(join(dir, 'etc', 'passwd'), `root:x:0:0::/root:/bin/sh\n${user}:x:${uid}:${uid}::/:/bin/sh\n`);
}

/** The names the files give, once both reads (and the cache's bookkeeping after them) settled. */
async function names(files: ReturnType<ImageEtcFilesCache['get']>): Promise<string[]> {
  const [users, groups] = await Promise.all([files.users(), files.groups()]);
  await new Promise((r) => setImmediate(r));
  return [...(users ?? []).map((u) => `${u.name}:${u.uid}`), ...(groups ?? []).map((g) => `group ${g.name}`)];
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), `crib-etc-files-${process.pid}-`));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('ImageEtcFilesCache', () => {
  it('reads an image\'s files once: the next create of the image reads nothing from its layers', async () => {
    const cache = new ImageEtcFilesCache();
    const dir = layer('app', 1000);
    const first = cache.get('chain-a', [dir]);
    expect(await names(first)).toEqual(['root:0', 'app:1000', 'group app']);
    // Under one chain id the layers never change; files gone from them prove nothing is read.
    rmSync(join(dir, 'etc'), { recursive: true });
    const again = cache.get('chain-a', [dir]);
    expect(again).toBe(first);
    expect(await resolveUser({ securityContext: null, imageUser: 'app', rootfsLayers: [dir], etcFiles: again }))
      .toEqual({ uid: 1000, gid: 1000, additionalGids: [1000] });
    // Another chain id is another image: read from its own layers.
    expect(await names(cache.get('chain-b', [dir]))).toEqual([]);
  });

  it('reads the overlay of the image\'s layers, top first', async () => {
    const lower = layer('app', 1000);
    const upper = join(base, `layer-${counter++}`);
    mkdirSync(join(upper, 'etc'), { recursive: true });
    writePasswd(upper, 'app', 1234);
    expect(await names(new ImageEtcFilesCache().get('chain', [upper, lower]))).toEqual(['root:0', 'app:1234', 'group app']);
  });

  it('drops the least recently used image beyond its bound', async () => {
    const cache = new ImageEtcFilesCache(2);
    const a = layer('a', 1);
    const b = layer('b', 2);
    const c = layer('c', 3);
    await names(cache.get('a', [a]));
    await names(cache.get('b', [b]));
    await names(cache.get('a', [a])); // a used last: b goes first
    await names(cache.get('c', [c]));
    expect(cache.size).toBe(2);
    writePasswd(a, 'a2', 1);
    writePasswd(b, 'b2', 2);
    expect(await names(cache.get('a', [a]))).toContain('a:1');
    expect(await names(cache.get('b', [b]))).toContain('b2:2');
  });

  it('keeps no read that failed: the next create reads again', async () => {
    const cache = new ImageEtcFilesCache();
    const dir = join(base, `layer-${counter++}`);
    mkdirSync(join(dir, 'etc'), { recursive: true });
    symlinkSync('/etc/loop', join(dir, 'etc', 'passwd'));
    symlinkSync('/etc/passwd', join(dir, 'etc', 'loop'));
    const failed = cache.get('chain', [dir]);
    await expect(failed.users()).rejects.toThrow(/too many levels of symbolic links/);
    await new Promise((r) => setImmediate(r));
    expect(cache.size).toBe(0);
    unlinkSync(join(dir, 'etc', 'passwd'));
    writePasswd(dir, 'app', 1000);
    expect(await names(cache.get('chain', [dir]))).toEqual(['root:0', 'app:1000']);
    expect(cache.size).toBe(1);
  });

  it('keeps no image whose files are larger than its bound; one without them is kept', async () => {
    const cache = new ImageEtcFilesCache(32, 40);
    const dir = layer('someone-with-a-long-name', 1000);
    expect(await names(cache.get('big', [dir]))).toContain('someone-with-a-long-name:1000');
    expect(cache.size).toBe(0);
    expect(await names(cache.get('small', [join(base, 'no-such-layer')]))).toEqual([]);
    expect(cache.size).toBe(1);
  });
});

describe('readEtcFiles', () => {
  it('reads the files each time it is called (a rootfs that is no image\'s alone)', async () => {
    const dir = layer('app', 1000);
    expect(await readEtcFiles([dir]).users()).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'app', uid: 1000 })]));
    writePasswd(dir, 'other', 7);
    expect(await readEtcFiles([dir]).users()).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'other', uid: 7 })]));
  });
});
