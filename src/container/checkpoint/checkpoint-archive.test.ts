// The checkpoint archive and the rootfs diff without a daemon or criu: real files in a temp dir,
// written and read back the way CheckpointContainer and a restore do.
import { mkdir, mkdtemp, readFile, readdir, symlink, writeFile, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FailedPreconditionError } from '../../errors.js';
import { mknod, S_IFCHR } from '../../sys/libc.js';
import { removeTree } from '../../sys/remove-tree.js';
import { makeDeepTree } from '../../../test-support/deep-tree.js';
import {
  isCheckpointArchivePath, readConfigDump, unpackCheckpointArchive, writeCheckpointArchive, type ConfigDump,
} from './checkpoint-archive.js';
import { checkedLocation } from './checkpoint-location.js';
import { applyRootfsDiff, writeRootfsDiff } from './rootfs-diff.js';

const CONFIG: ConfigDump = {
  id: 'c1', name: 'count', rootfsImage: 'sha256:aa', rootfsImageRef: 'sha256:aa', rootfsImageName: 'busybox:latest',
  runtime: 'crib', createdTime: '2026-01-01T00:00:00.000Z', checkpointedTime: '2026-01-01T00:01:00.000Z',
};

describe('checkpoint archive', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-ckpt-unit-'));
  });
  afterEach(async () => {
    await removeTree(dir); // a tree deeper than PATH_MAX is beyond fs.rm
  });

  /** An upper dir with a changed file, a new dir, a symlink and (where mknod of a whiteout is
   * allowed) a deleted file. */
  async function upper(): Promise<{ path: string; whiteout: boolean }> {
    const path = join(dir, 'upper');
    await mkdir(join(path, 'etc'), { recursive: true });
    await writeFile(join(path, 'counter'), '42\n');
    await writeFile(join(path, 'etc', 'motd'), 'changed\n');
    await symlink('counter', join(path, 'link'));
    let whiteout = true;
    try {
      mknod(join(path, 'etc', 'gone'), S_IFCHR | 0o600, 0, 0);
    } catch {
      whiteout = false; // an unprivileged kernel that refuses whiteouts: the rest still holds
    }
    return { path, whiteout };
  }

  it('writes rootfs-diff.tar from an upper dir and applies it onto an empty one, deletions included', async () => {
    const u = await upper();
    const tar = join(dir, 'rootfs-diff.tar');
    const diff = await writeRootfsDiff(u.path, tar);
    expect(diff.deleted).toEqual(u.whiteout ? ['/etc/gone'] : []);
    const target = join(dir, 'new-upper');
    await mkdir(target);
    await applyRootfsDiff(tar, target, { maxBytes: 1 << 20, maxEntries: 100 });
    expect(await readFile(join(target, 'counter'), 'utf8')).toBe('42\n');
    expect(await readFile(join(target, 'etc', 'motd'), 'utf8')).toBe('changed\n');
    expect((await lstat(join(target, 'link'))).isSymbolicLink()).toBe(true);
    if (u.whiteout) {
      const st = await lstat(join(target, 'etc', 'gone'));
      expect(st.isCharacterDevice() && st.rdev === 0).toBe(true);
    }
  });

  it('refuses, by name, to archive a writable layer nested past PATH_MAX', async () => {
    const u = await upper();
    makeDeepTree(join(u.path, 'deep'));
    const tar = join(dir, 'deep-diff.tar');
    const refused = writeRootfsDiff(u.path, tar);
    await expect(refused).rejects.toBeInstanceOf(FailedPreconditionError);
    await expect(refused).rejects.toThrow(/writable layer holds a path too long to archive \(over \d+ bytes: \/deep\/dddd/);
  });

  it('writes the archive atomically and reads its config.dump and images back', async () => {
    const images = join(dir, 'images');
    await mkdir(images);
    await writeFile(join(images, 'core-1.img'), 'core');
    await writeFile(join(images, 'descriptors.json'), '["/dev/null","pipe:[1]","pipe:[2]"]');
    const u = await upper();
    const diffTar = join(dir, 'rootfs-diff.tar');
    const diff = await writeRootfsDiff(u.path, diffTar);
    const out = join(dir, 'out');
    await mkdir(out);
    const location = join(out, 'ckpt.tar');
    await writeFile(location, 'an older checkpoint');
    await writeCheckpointArchive(location, { imagesDir: images, config: CONFIG, spec: '{"ociVersion":"1.0.2"}', rootfsDiffTar: diffTar, deleted: diff.deleted });
    // Only the archive: its temporary name is gone.
    expect(await readdir(out)).toEqual(['ckpt.tar']);
    expect(await isCheckpointArchivePath(location)).toBe(true);
    expect(await readConfigDump(location)).toEqual(CONFIG);
    const unpacked = await unpackCheckpointArchive(location, join(dir, 'unpacked'));
    expect((await readdir(unpacked.imagesDir)).sort()).toEqual(['core-1.img', 'descriptors.json']);
    expect(JSON.parse(await readFile(join(dir, 'unpacked', 'spec.dump'), 'utf8'))).toEqual({ ociVersion: '1.0.2' });
    expect(unpacked.rootfsDiffTar).toBe(join(dir, 'unpacked', 'rootfs-diff.tar'));
    if (u.whiteout) expect(JSON.parse(await readFile(join(dir, 'unpacked', 'deleted.files'), 'utf8'))).toEqual(['/etc/gone']);
  });

  it('leaves nothing when writing fails, and the old file where it was', async () => {
    const out = join(dir, 'out');
    await mkdir(out);
    const location = join(out, 'ckpt.tar');
    await writeFile(location, 'an older checkpoint');
    await expect(writeCheckpointArchive(location, {
      imagesDir: join(dir, 'no-such-images'), config: CONFIG, spec: '{}', rootfsDiffTar: join(dir, 'none.tar'), deleted: [],
    })).rejects.toThrow(/no-such-images/);
    expect(await readdir(out)).toEqual(['ckpt.tar']);
    expect(await readFile(location, 'utf8')).toBe('an older checkpoint');
  });

  it('tells a tar without config.dump, and a path that is no file, from a checkpoint archive', async () => {
    const images = join(dir, 'images');
    await mkdir(images);
    const diffTar = join(dir, 'rootfs-diff.tar');
    await mkdir(join(dir, 'empty'));
    await writeRootfsDiff(join(dir, 'empty'), diffTar);
    // A plain tar (the rootfs diff itself) is not a checkpoint.
    await expect(readConfigDump(diffTar)).rejects.toThrow(/is not a container checkpoint archive: it has no config.dump/);
    await writeFile(join(dir, 'junk'), 'not a tar at all');
    await expect(readConfigDump(join(dir, 'junk'))).rejects.toThrow(/no config.dump|not a readable checkpoint archive/);
    await expect(isCheckpointArchivePath('busybox:latest')).resolves.toBe(false);
    await expect(isCheckpointArchivePath(join(dir, 'missing.tar'))).rejects.toThrow(/does not exist/);
    await expect(isCheckpointArchivePath(dir)).rejects.toThrow(/not a regular file/);
  });

  it('checks the location: absolute, in an existing directory, replacing only a regular file', async () => {
    await expect(checkedLocation('')).rejects.toThrow(/must not be empty/);
    await expect(checkedLocation('rel.tar')).rejects.toThrow(/must be an absolute path/);
    await expect(checkedLocation(join(dir, 'nope', 'x.tar'))).rejects.toThrow(/does not exist/);
    await expect(checkedLocation(`${dir}/`)).rejects.toThrow(/names a directory/);
    await expect(checkedLocation(dir)).rejects.toThrow(/is not a regular file/);
    await symlink('/etc/passwd', join(dir, 'l.tar'));
    await expect(checkedLocation(join(dir, 'l.tar'))).rejects.toThrow(/is not a regular file/);
    await expect(checkedLocation(join(dir, 'x', '..', 'ok.tar'))).resolves.toBe(join(dir, 'ok.tar'));
  });
});
