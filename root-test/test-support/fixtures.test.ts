// The image builder's output is checked with independent tools (GNU tar, getcap, chroot into the
// busybox rootfs), since other suites trust these fixtures to mean what they say.
import { execFile } from 'node:child_process';
import { lstat, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildImage, busyboxRootfsLayer, layerFromEntries, platformImage, sha256, writeDockerSaveArchive, writeOciArchive, type Compression,
} from '../../test-support/image-builder.js';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), `crib-fixtures-${process.pid}-`));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

// vfs_cap_data revision 2 with the effective flag: cap_net_bind_service (10) and cap_setfcap (31),
// whose bit makes a 0x80 byte — binary that a text-only pax encoder would mangle.
const CAPS = Buffer.alloc(20);
CAPS.writeUInt32LE(0x02000001, 0);
CAPS.writeUInt32LE(((1 << 10) | 0x80000000) >>> 0, 4);

async function extract(blob: Buffer, compression: Compression, name: string): Promise<string> {
  const archive = join(dir, `${name}.tar`);
  const out = join(dir, name);
  await writeFile(archive, blob);
  await run('mkdir', ['-p', out]);
  const flag = compression === 'gzip' ? ['-z'] : compression === 'zstd' ? ['--zstd'] : [];
  await run('tar', [...flag, '--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', archive, '-C', out]);
  return out;
}

describe('test image builder', () => {
  it.each(['gzip', 'zstd', 'none'] as const)('writes every entry type into a %s layer that GNU tar reads back', async (compression) => {
    const mtime = new Date('2023-05-06T07:08:09Z');
    const layer = await layerFromEntries([
      { type: 'dir', path: 'etc', mode: 0o750, uid: 10, gid: 20, mtime },
      { type: 'file', path: 'etc/app.conf', content: 'x=1\n', mode: 0o640, uid: 1000, gid: 1001, mtime },
      { type: 'file', path: 'bin-cap', content: 'cap', mode: 0o755, xattrs: { 'security.capability': CAPS } },
      { type: 'symlink', path: 'link', target: 'etc/app.conf' },
      { type: 'hardlink', path: 'etc/hard', target: 'etc/app.conf' },
      { type: 'char', path: 'null', major: 1, minor: 3, mode: 0o666 },
      { type: 'block', path: 'loop9', major: 7, minor: 9, mode: 0o600 },
      { type: 'fifo', path: 'pipe', mode: 0o644 },
      { type: 'whiteout', path: 'etc/gone' },
      { type: 'opaque', path: 'etc' },
      { type: 'file', path: `deep/${'d'.repeat(120)}/file`, content: 'long path\n' },
    ], compression);
    expect(layer.digest).toBe(sha256(layer.blob));
    expect(layer.diffId).toBe(sha256(layer.tar));
    expect(layer.size).toBe(layer.blob.length);
    const root = await extract(layer.blob, compression, `layer-${compression}`);

    const conf = await stat(join(root, 'etc/app.conf'));
    expect([conf.mode & 0o7777, conf.uid, conf.gid]).toEqual([0o640, 1000, 1001]);
    expect(conf.mtime.toISOString()).toBe(mtime.toISOString());
    const etc = await stat(join(root, 'etc'));
    expect([etc.mode & 0o7777, etc.uid, etc.gid]).toEqual([0o750, 10, 20]);
    expect(await readlink(join(root, 'link'))).toBe('etc/app.conf');
    expect((await stat(join(root, 'etc/hard'))).ino).toBe(conf.ino);
    const nul = await lstat(join(root, 'null'));
    expect(nul.isCharacterDevice()).toBe(true);
    expect(nul.rdev).toBe((1 << 8) | 3);
    expect((await lstat(join(root, 'loop9'))).isBlockDevice()).toBe(true);
    expect((await lstat(join(root, 'pipe'))).isFIFO()).toBe(true);
    expect((await lstat(join(root, 'etc/.wh.gone'))).isFile()).toBe(true);
    expect((await lstat(join(root, 'etc/.wh..wh..opq'))).isFile()).toBe(true);
    expect(await readFile(join(root, `deep/${'d'.repeat(120)}/file`), 'utf8')).toBe('long path\n');
    const { stdout } = await run('getcap', [join(root, 'bin-cap')]);
    expect(stdout).toMatch(/cap_net_bind_service,cap_setfcap=ep/);
  });

  it('builds a busybox rootfs that runs, with a non-root user', async () => {
    const layer = await busyboxRootfsLayer();
    const root = await extract(layer.blob, 'gzip', 'busybox');
    const { stdout } = await run('chroot', [root, '/bin/sh', '-c', 'echo hello; id -u user; ls /bin/httpd /bin/nc']);
    expect(stdout.split('\n').slice(0, 2)).toEqual(['hello', '1000']);
    expect((await stat(join(root, 'tmp'))).mode & 0o7777).toBe(0o1777);
  });

  it('writes an OCI layout archive and a docker save archive', async () => {
    const layer = await layerFromEntries([{ type: 'file', path: 'a', content: 'A' }]);
    const image = buildImage({ layers: [layer], config: { Cmd: ['/a'] } });
    const oci = join(dir, 'oci.tar');
    await writeOciArchive(oci, [{ image, name: 'example.com/app:1.0' }]);
    const ociDir = join(dir, 'oci');
    await run('mkdir', ['-p', ociDir]);
    await run('tar', ['-xf', oci, '-C', ociDir]);
    expect(JSON.parse(await readFile(join(ociDir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(join(ociDir, 'index.json'), 'utf8'));
    expect(index.manifests[0]).toMatchObject({
      digest: image.manifest.digest,
      annotations: { 'org.opencontainers.image.ref.name': '1.0', 'io.containerd.image.name': 'example.com/app:1.0' },
    });
    for (const d of [image.manifest.digest, image.config.digest, layer.digest]) {
      expect(sha256(await readFile(join(ociDir, 'blobs/sha256', d.slice(7))))).toBe(d);
    }

    const multi = join(dir, 'multi.tar');
    const amd = await platformImage({ os: 'linux', architecture: 'amd64' });
    const arm = await platformImage({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    await writeOciArchive(multi, [{ platforms: [{ image: amd }, { image: arm }], name: 'example.com/multi:2' }]);
    const multiDir = join(dir, 'multi');
    await run('mkdir', ['-p', multiDir]);
    await run('tar', ['-xf', multi, '-C', multiDir]);
    const top = JSON.parse(await readFile(join(multiDir, 'index.json'), 'utf8')).manifests[0];
    expect(top.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const nested = JSON.parse(await readFile(join(multiDir, 'blobs/sha256', top.digest.slice(7)), 'utf8'));
    expect(nested.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    for (const m of nested.manifests) expect(sha256(await readFile(join(multiDir, 'blobs/sha256', m.digest.slice(7))))).toBe(m.digest);

    const save = join(dir, 'save.tar');
    await writeDockerSaveArchive(save, [{ image, names: ['app:1.0'] }]);
    const saveDir = join(dir, 'save');
    await run('mkdir', ['-p', saveDir]);
    await run('tar', ['-xf', save, '-C', saveDir]);
    const manifest = JSON.parse(await readFile(join(saveDir, 'manifest.json'), 'utf8'));
    expect(manifest).toEqual([{ Config: `${image.config.digest.slice(7)}.json`, RepoTags: ['app:1.0'], Layers: [`${layer.diffId.slice(7)}/layer.tar`] }]);
    expect((await readFile(join(saveDir, manifest[0].Layers[0]))).equals(layer.tar)).toBe(true);
    expect(sha256(await readFile(join(saveDir, manifest[0].Config)))).toBe(image.config.digest);
  });
});
