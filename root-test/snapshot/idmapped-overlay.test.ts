// Overlays on idmapped layers (a user-namespaced pod's rootfs and image volumes), mounted by the
// daemon's code against the real kernel, with a user namespace the real crib-pinns pinned: the
// layers stay as they are on disk, the pod sees them through its id mapping.
import { execFileSync } from 'node:child_process';
import { chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeBinaries } from '../../src/native-paths.js';
import { mountIdmappedLayers, mountIdmappedOverlay, unmountOverlay } from '../../src/snapshot/overlay-mount.js';

const BASE = 1_900_544; // 29 * 65536
let dir = '';
let userns = '';
const targets: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crib-idmap-ovl-'));
  execFileSync(nativeBinaries.pinns, ['--dir', join(dir, 'ns'), '--net', '--user', '--uid-map', `0:${BASE}:65536`, '--gid-map', `0:${BASE}:65536`]);
  userns = join(dir, 'ns', 'user');
  for (const l of ['l1', 'l2']) await mkdir(join(dir, l));
  await writeFile(join(dir, 'l1', 'owned'), 'by 1234\n');
  await chown(join(dir, 'l1', 'owned'), 1234, 1234);
  await writeFile(join(dir, 'l2', 'root-file'), 'by root\n');
});

afterAll(async () => {
  for (const t of targets) await unmountOverlay(t);
  execFileSync(nativeBinaries.pinns, ['--remove', join(dir, 'ns')]);
  await rm(dir, { recursive: true, force: true });
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
});

const target = async (name: string) => {
  const t = join(dir, name);
  await mkdir(t);
  targets.push(t);
  return t;
};

describe('idmapped overlays', () => {
  it('a writable rootfs: layers seen with mapped ids, their files unchanged on disk', async () => {
    const t = await target('rw');
    for (const d of ['upper', 'work']) await mkdir(join(dir, d));
    await mountIdmappedOverlay({ lowerdirs: [join(dir, 'l2'), join(dir, 'l1')], upperdir: join(dir, 'upper'), workdir: join(dir, 'work') }, t, userns);
    expect((await stat(join(t, 'owned'))).uid).toBe(BASE + 1234);
    expect((await stat(join(t, 'root-file'))).uid).toBe(BASE);
    expect(await readFile(join(t, 'owned'), 'utf8')).toBe('by 1234\n');
    // The layers themselves keep their ids.
    expect((await stat(join(dir, 'l1', 'owned'))).uid).toBe(1234);
  });

  for (const [name, layers] of [['one layer', ['l1']], ['two layers', ['l2', 'l1']]] as const) {
    it(`read-only, ${name} (an image volume)`, async () => {
      const t = await target(`ro-${layers.length}`);
      await mountIdmappedLayers(layers.map((l) => join(dir, l)), t, userns);
      expect((await stat(join(t, 'owned'))).uid).toBe(BASE + 1234);
      await expect(writeFile(join(t, 'new'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
      const opts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === t)!.split(' ')[5]!.split(',');
      expect(opts).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
    });
  }

  it('fails naming the layer when it does not exist', async () => {
    const t = await target('missing');
    await expect(mountIdmappedLayers([join(dir, 'nope')], t, userns)).rejects.toThrow(/open_tree layer `.*\/nope`: ENOENT/);
  });
});
