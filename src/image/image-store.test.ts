import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { chainIds } from '../digest/chain-id.js';
import { sha256 } from '../../test-support/tar-fixtures.js';
import { ImageStore, type ImageRecord } from './image-store.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), `crib-images-${process.pid}-`));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function record(seed: string, tags: string[]): ImageRecord {
  const diffIds = [sha256(`${seed}-d0`), sha256(`${seed}-d1`)];
  return {
    id: sha256(`${seed}-config`),
    repoTags: tags,
    repoDigests: [`docker.io/library/${seed}@${sha256(`${seed}-manifest`)}`],
    size: 1234,
    configDigest: sha256(`${seed}-config`),
    manifestDigest: sha256(`${seed}-manifest`),
    chainId: chainIds(diffIds)[1]!,
    diffIds,
    layers: [
      { digest: sha256(`${seed}-l0`), size: 10, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
      { digest: sha256(`${seed}-l1`), size: 20, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
    ],
    config: { architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] } },
    pinned: false,
    createdAt: new Date().toISOString(),
  };
}

describe('ImageStore', () => {
  it('stores images and finds them by id, prefix, tag and repo digest', async () => {
    const store = new ImageStore(root);
    await store.load();
    const busy = record('busybox', ['docker.io/library/busybox:latest']);
    const alp = record('alpine', ['docker.io/library/alpine:3.20', 'docker.io/library/alpine:latest']);
    await store.put(busy);
    await store.put(alp);
    expect(store.get(busy.id)?.repoTags).toEqual(busy.repoTags);
    expect(store.resolve(busy.id)?.id).toBe(busy.id);
    expect(store.resolve(busy.id.slice(7))?.id).toBe(busy.id);
    expect(store.resolve(busy.id.slice(7, 19))?.id).toBe(busy.id);
    expect(store.resolve(`sha256:${alp.id.slice(7, 20)}`)?.id).toBe(alp.id);
    expect(store.resolve(busy.id.slice(7, 17))).toBeUndefined(); // under 12 hex digits
    expect(store.resolve('docker.io/library/alpine:3.20')?.id).toBe(alp.id);
    expect(store.resolve(busy.repoDigests[0]!)?.id).toBe(busy.id);
    expect(store.resolve('docker.io/library/nginx:latest')).toBeUndefined();
    expect(store.list().map((r) => r.id).sort()).toEqual([alp.id, busy.id].sort());
  });

  it('refuses ambiguous prefixes', async () => {
    const store = new ImageStore(join(root, 'ambiguous'));
    await store.load();
    // Find two ids sharing a 12-digit prefix is impractical; share the first 12 by construction.
    const a = record('a', []);
    const b = { ...record('b', []), id: `${a.id.slice(0, 19)}${'0'.repeat(64 - 12)}` };
    await store.put(a);
    await store.put(b);
    expect(() => store.resolve(a.id.slice(7, 19))).toThrow(InvalidArgumentError);
    expect(store.resolve(a.id)?.id).toBe(a.id);
  });

  it('moves a tag from the image that had it, and persists across a fresh instance', async () => {
    const store = new ImageStore(root);
    await store.load();
    const busy = store.resolve('docker.io/library/busybox:latest')!;
    const alp = store.resolve('docker.io/library/alpine:latest')!;
    await store.addTag(busy.id, 'docker.io/library/alpine:latest');
    expect(store.resolve('docker.io/library/alpine:latest')?.id).toBe(busy.id);
    expect(store.get(alp.id)?.repoTags).toEqual(['docker.io/library/alpine:3.20']);

    // put() of a new image carrying a tag takes it too.
    const newer = record('busybox-new', ['docker.io/library/busybox:latest']);
    await store.put(newer);
    expect(store.resolve('docker.io/library/busybox:latest')?.id).toBe(newer.id);
    expect(store.get(busy.id)?.repoTags).toEqual(['docker.io/library/alpine:latest']);
    await store.setPinned(alp.id, true);
    await expect(store.addTag(sha256('nope'), 'x:y')).rejects.toBeInstanceOf(NotFoundError);

    const fresh = new ImageStore(root);
    await fresh.load();
    expect(fresh.resolve('docker.io/library/busybox:latest')?.id).toBe(newer.id);
    expect(fresh.resolve('docker.io/library/alpine:latest')?.id).toBe(busy.id);
    expect(fresh.get(alp.id)?.pinned).toBe(true);
    expect(fresh.get(alp.id)?.config).toEqual(alp.config);
    expect(fresh.list()).toHaveLength(3);

    expect(fresh.referencedDigests()).toEqual(new Set(fresh.list().flatMap((r) =>
      [r.manifestDigest, r.configDigest, ...r.layers.map((l) => l.digest)])));
    expect(fresh.referencedChainIds().has(newer.chainId!)).toBe(true);
    expect(fresh.referencedChainIds().has(newer.diffIds[0]!)).toBe(true);

    expect((await fresh.remove(alp.id))?.id).toBe(alp.id);
    expect(await fresh.remove(alp.id)).toBeUndefined();
    expect(fresh.resolve('docker.io/library/alpine:3.20')).toBeUndefined();
    expect(await fresh.removeTag('docker.io/library/alpine:latest')).toBe(true);
    expect(fresh.get(busy.id)?.repoTags).toEqual([]);

    const third = new ImageStore(root);
    await third.load();
    expect(third.get(alp.id)).toBeUndefined();
    expect(third.get(busy.id)?.repoTags).toEqual([]);
  });

  it('gives a tag claimed by two records (a crash mid-move) to the newer one', async () => {
    const dir = join(root, 'crash');
    const store = new ImageStore(dir);
    await store.load();
    const older = { ...record('old', ['x.io/a:1']), updatedAt: '2020-01-01T00:00:00.000Z' };
    const newer = { ...record('new', ['x.io/a:1']), updatedAt: '2024-01-01T00:00:00.000Z' };
    writeFileSync(join(dir, 'images', `${older.id.slice(7)}.json`), JSON.stringify(older));
    writeFileSync(join(dir, 'images', `${newer.id.slice(7)}.json`), JSON.stringify(newer));
    writeFileSync(join(dir, 'images', '.tmp-leftover'), 'partial');
    // Ordered as plain strings: no ICU collator (image-store.ts says why).
    const localeCompare = vi.spyOn(String.prototype, 'localeCompare');
    try {
      await store.load();
      expect(localeCompare).not.toHaveBeenCalled();
    } finally {
      localeCompare.mockRestore();
    }
    expect(store.resolve('x.io/a:1')?.id).toBe(newer.id);
    expect(store.get(older.id)?.repoTags).toEqual([]);
    expect(readdirSync(join(dir, 'images')).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  });
});
