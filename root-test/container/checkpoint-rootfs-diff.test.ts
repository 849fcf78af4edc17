// The checkpoint's rootfs diff against a real overlay mount (root: overlay, trusted.* xattrs): a
// container's file changes made through the merged view — a file written, one deleted, a
// directory of the image removed and made again — are written from its upper dir, applied to a
// new container's empty upper dir, and seen through a new overlay over the same image exactly as
// the first container left them. A directory removed and re-created is opaque in the upper dir
// (trusted.overlay.opaque=y): it hides the whole image directory, so the diff must carry that and
// deleted.files must name it, or a restore brings the image's old contents back.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type TarStream from 'tar-stream';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { applyDeletedFiles } from '../../src/container/checkpoint/deleted-files.js';
import { applyRootfsDiff, writeRootfsDiff } from '../../src/container/checkpoint/rootfs-diff.js';
import { mountOverlay, unmountOverlay } from '../../src/snapshot/overlay-mount.js';
import { lazyModule } from '../../src/sys/lazy-module.js';

const tarStream = lazyModule<typeof TarStream>('tar-stream');

async function tarNames(path: string): Promise<string[]> {
  const names: string[] = [];
  const extract = tarStream().extract();
  extract.on('entry', (header, stream, next) => {
    names.push(header.name);
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(createReadStream(path), extract);
  return names;
}

describe('the rootfs diff of a checkpoint, through real overlay mounts', () => {
  let dir: string;
  const mounted: string[] = [];

  /** An overlay of the image dir and a fresh upper dir at `name`/merged. */
  const overlay = async (name: string) => {
    const d = join(dir, name);
    for (const s of ['upper', 'work', 'merged']) mkdirSync(join(d, s), { recursive: true });
    await mountOverlay({ lowerdirs: [join(dir, 'image')], upperdir: join(d, 'upper'), workdir: join(d, 'work') }, join(d, 'merged'), dir);
    mounted.push(join(d, 'merged'));
    return { upper: join(d, 'upper'), merged: join(d, 'merged') };
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'crib-ckpt-diff-'));
    // The image: /etc/motd, /var/www/index.html and a /home with a user's files in it.
    for (const p of ['etc', 'var/www', 'home/user/.config']) mkdirSync(join(dir, 'image', p), { recursive: true });
    writeFileSync(join(dir, 'image', 'etc', 'motd'), 'image motd\n');
    writeFileSync(join(dir, 'image', 'var', 'www', 'index.html'), 'image page\n');
    writeFileSync(join(dir, 'image', 'home', 'user', '.profile'), 'image profile\n');
    writeFileSync(join(dir, 'image', 'home', 'user', '.config', 'app'), 'image app\n');
    writeFileSync(join(dir, 'image', 'home', 'keep-me-not'), 'image file\n');
  });
  afterAll(async () => {
    for (const m of mounted.splice(0)) await unmountOverlay(m);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('carries a directory removed and re-created (opaque) into the restored rootfs, and names it in deleted.files', async () => {
    // The checkpointed container's changes, made as a process in it makes them.
    const first = await overlay('first');
    writeFileSync(join(first.merged, 'written'), 'by the container\n');
    unlinkSync(join(first.merged, 'var', 'www', 'index.html'));
    rmSync(join(first.merged, 'home'), { recursive: true });
    mkdirSync(join(first.merged, 'home'));
    writeFileSync(join(first.merged, 'home', 'only-this'), 'new\n');
    // A directory removed and re-created with nothing in it is opaque too.
    rmSync(join(first.merged, 'etc'), { recursive: true });
    mkdirSync(join(first.merged, 'etc'));

    const tar = join(dir, 'rootfs-diff.tar');
    const diff = await writeRootfsDiff(first.upper, tar);
    expect(diff.deleted.sort()).toEqual(['/etc', '/home', '/var/www/index.html']);
    const names = await tarNames(tar);
    expect(names).toEqual(expect.arrayContaining(['written', 'var/www/.wh.index.html', 'home/.wh..wh..opq', 'home/only-this', 'etc/.wh..wh..opq']));

    // The restore: the diff into a new container's empty upper dir, then its overlay.
    mkdirSync(join(dir, 'second', 'upper'), { recursive: true });
    await applyRootfsDiff(tar, join(dir, 'second', 'upper'), { maxBytes: 1 << 20, maxEntries: 1000 });
    const second = await overlay('second');
    expect(readFileSync(join(second.merged, 'written'), 'utf8')).toBe('by the container\n');
    expect(existsSync(join(second.merged, 'var', 'www', 'index.html'))).toBe(false);
    // Nothing of the image's /home or /etc comes back.
    expect(readdirSync(join(second.merged, 'home'))).toEqual(['only-this']);
    expect(readdirSync(join(second.merged, 'etc'))).toEqual([]);
    // The same view the checkpointed container had.
    for (const p of ['', 'home', 'etc', 'var/www']) {
      expect(readdirSync(join(second.merged, p)).sort(), `/${p}`).toEqual(readdirSync(join(first.merged, p)).sort());
    }
  });
  it('applies the deleted.files of an archive whose tar has no whiteouts (as CRI-O and podman write it)', async () => {
    // Their rootfs-diff.tar is the files that are there, taken from the merged view; what is
    // gone is only in deleted.files, a re-made directory named as deleted like any other.
    const upper = join(dir, 'foreign', 'upper');
    mkdirSync(join(upper, 'home'), { recursive: true });
    writeFileSync(join(upper, 'home', 'only-this'), 'new\n');
    writeFileSync(join(upper, 'written'), 'by the container\n');
    // A link the tar put there: a deleted path through it must not reach outside the upper dir.
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim'), 'host file\n');
    symlinkSync(outside, join(upper, 'link'));
    const list = join(dir, 'foreign', 'deleted.files');
    writeFileSync(list, JSON.stringify(['/var/www/index.html', '/home', '/etc/motd', '/no/such/file', '/link/victim']));
    await applyDeletedFiles(list, { lowerdirs: [join(dir, 'image')], upperdir: upper }, 100);
    // The parents of a whiteout are copied up with the image's mode.
    expect(statSync(join(upper, 'var', 'www')).mode & 0o7777).toBe(statSync(join(dir, 'image', 'var', 'www')).mode & 0o7777);
    expect(lstatSync(join(upper, 'var', 'www', 'index.html')).isCharacterDevice()).toBe(true);
    // Nothing is made for what the image never had, and nothing outside.
    expect(existsSync(join(upper, 'no'))).toBe(false);
    expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('host file\n');
    expect(readdirSync(outside)).toEqual(['victim']);

    const view = await overlay('foreign');
    expect(readFileSync(join(view.merged, 'written'), 'utf8')).toBe('by the container\n');
    expect(existsSync(join(view.merged, 'var', 'www', 'index.html'))).toBe(false);
    expect(readdirSync(join(view.merged, 'home'))).toEqual(['only-this']);
    expect(readdirSync(join(view.merged, 'etc'))).toEqual([]);
  });

  it('refuses a deleted.files that is not a list of paths inside the rootfs', async () => {
    const upper = join(dir, 'bad', 'upper');
    mkdirSync(upper, { recursive: true });
    const list = join(dir, 'bad', 'deleted.files');
    const refused = async (content: string, message: RegExp) => {
      writeFileSync(list, content);
      await expect(applyDeletedFiles(list, { lowerdirs: [join(dir, 'image')], upperdir: upper }, 3)).rejects.toThrow(message);
    };
    await refused('{"a":1}', /must be a JSON array of paths/);
    await refused('not json', /does not parse/);
    await refused('["etc/motd"]', /is not an absolute path/);
    await refused('["/../../etc/passwd"]', /climbs out/);
    await refused('["/"]', /names the root/);
    await refused('["/a","/b","/c","/d"]', /lists 4 paths, more than 3/);
    expect(readdirSync(upper)).toEqual([]);
  });
});
