// ImageService as the daemon opens it (ImageService.open: real content store, snapshotter and
// image records under a temp root, the real registry client) pulling from an in-process registry
// (test-support/hostile-registry.ts) on loopback: no root (layers are owned by the test's own
// uid, so unpacking needs no chown privilege), no daemon. What the service decides is tested
// here: pull dedupe, what RemoveImage and garbage collection keep and free, a failed pull's
// leftovers, and a pull's leases against a concurrent RemoveImage.
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { configFromObject } from '../config/config.js';
import { chainIds } from '../digest/chain-id.js';
import { NotFoundError } from '../errors.js';
import { buildImage, layerFromEntries, type BuiltImage, type LayerBlob } from '../../test-support/image-builder.js';
import { startHostileRegistry, type HostileRegistry } from '../../test-support/hostile-registry.js';
import { ImageService } from './image-service.js';
import { Snapshotter } from '../snapshot/snapshotter.js';

const uid = process.getuid!();
const gid = process.getgid!();

function layer(files: Record<string, string>): Promise<LayerBlob> {
  return layerFromEntries(Object.entries(files).map(([path, content]) => ({ type: 'file', path, content, uid, gid, mode: 0o644 })));
}

/** Every digest a pull of `img` stores. */
const digestsOf = (img: BuiltImage) => [img.manifest.digest, img.config.digest, ...img.layers.map((l) => l.digest)].sort();
const chainsOf = (img: BuiltImage) => chainIds(img.layers.map((l) => l.diffId));

let registry: HostileRegistry;
let base: LayerBlob;
/** Two layers: base + a. */
let imageA: BuiltImage;
/** Shares A's base layer, plus its own. */
let imageB: BuiltImage;

beforeAll(async () => {
  registry = await startHostileRegistry();
  base = await layer({ 'etc/base': 'base layer\n' });
  imageA = buildImage({ layers: [base, await layer({ 'a/file': 'from a\n' })], config: { User: '1000' } });
  imageB = buildImage({ layers: [base, await layer({ 'b/file': 'from b\n' })] });
  registry.serveImage('lib/a', '1', imageA);
  registry.serveImage('lib/b', '1', imageB);
});

afterAll(async () => {
  await registry?.stop();
});

describe('ImageService', () => {
  let dir: string;
  const open: ImageService[] = [];
  const ref = (name: string) => `${registry.host}/${name}`;

  async function service(root = join(dir, 'root')): Promise<ImageService> {
    const svc = await ImageService.open(configFromObject({ root, state: join(dir, 'state') }), await Snapshotter.open(root));
    open.push(svc);
    return svc;
  }

  /** The daemon stops: its service closes (a restart is then a new service()). */
  async function stop(svc: ImageService): Promise<void> {
    open.splice(open.indexOf(svc), 1);
    await svc.close();
  }

  /** Hold every GET the predicate picks until release() (serving it from `bytes` then). */
  function holdGets(match: (path: string) => Buffer | undefined): { reached: Promise<void>; release: () => void } {
    let release!: () => void;
    let reached!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const reachedP = new Promise<void>((r) => (reached = r));
    registry.handle((req: IncomingMessage, res: ServerResponse) => {
      const bytes = req.method === 'GET' ? match(req.url ?? '') : undefined;
      if (!bytes) return false;
      reached();
      void gate.then(() => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
        res.end(bytes);
      });
      return true;
    });
    return { reached: reachedP, release };
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-image-svc-'));
    registry.requests.length = 0;
  });

  afterEach(async () => {
    registry.clearHandlers();
    for (const s of open.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a pull stores the blobs, one snapshot per layer chain and a record a restarted daemon finds', async () => {
    const svc = await service();
    const flushes: (number | undefined)[] = [];
    svc.onPullFinished((p) => flushes.push(p.flushMs));
    const view = await svc.pull(ref('lib/a:1'), undefined);
    expect(view).toMatchObject({ id: imageA.config.digest, repoTags: [ref('lib/a:1')], user: '1000', pinned: false });
    // How long the layers' flush took is told (the pull's log line carries it).
    expect(flushes).toEqual([expect.any(Number)]);
    expect(view.repoDigests).toEqual([`${ref('lib/a')}@${imageA.manifest.digest}`]);
    expect((await svc.content.list()).sort()).toEqual(digestsOf(imageA));
    const chains = chainsOf(imageA);
    expect(svc.snapshots.list().map((s) => s.chainId).sort()).toEqual([...chains].sort());
    // The layers are unpacked: the top chain's lower dirs hold both layers' files.
    const [top, bottom] = svc.snapshots.lowerDirs(chains[1]!);
    expect(await readFile(join(top!, 'a', 'file'), 'utf8')).toBe('from a\n');
    expect(await readFile(join(bottom!, 'etc', 'base'), 'utf8')).toBe('base layer\n');

    await stop(svc);
    const again = await service();
    for (const name of [ref('lib/a:1'), imageA.config.digest, imageA.config.digest.slice(7, 19), `${ref('lib/a')}@${imageA.manifest.digest}`]) {
      expect((await again.find(name))?.id, name).toBe(imageA.config.digest);
    }
    expect(again.snapshots.list()).toHaveLength(2);
    // Start-up GC keeps what the record uses.
    expect((await again.content.list()).sort()).toEqual(digestsOf(imageA));
  });

  it('gives one view per record, and a new one, showing the change, once the record changes', async () => {
    const svc = await service();
    const first = await svc.status(ref('lib/a:1'));
    expect(first).toBeUndefined();
    const pulled = await svc.pull(ref('lib/a:1'), undefined);
    const view = (await svc.status(ref('lib/a:1')))!;
    expect(view).toBe(pulled);
    expect((await svc.list())[0]).toBe(view);
    // The same image under a second tag: its record is replaced, and so is its view.
    registry.serveImage('lib/a', 'second', imageA);
    await svc.pull(ref('lib/a:second'), undefined);
    const after = (await svc.status(ref('lib/a:1')))!;
    expect(after).not.toBe(view);
    expect(after.repoTags.sort()).toEqual([ref('lib/a:1'), ref('lib/a:second')].sort());
    expect(view.repoTags).toEqual([ref('lib/a:1')]);
  });

  it('concurrent fsInfo calls share one measurement; a later call measures again', async () => {
    const svc = await service();
    const first = svc.fsInfo();
    expect(svc.fsInfo()).toBe(first);
    const before = await first;
    await svc.pull(ref('lib/a:1'), undefined);
    const after = await svc.fsInfo();
    expect(after).not.toBe(before);
    expect(after.images.bytes).toBeGreaterThan(before.images.bytes);
    expect(after.images.inodes).toBeGreaterThan(before.images.inodes);
  });

  it('concurrent pulls of one reference share one download', async () => {
    // A single pull's requests to lib/a, as the baseline.
    await (await service(join(dir, 'other-root'))).pull(ref('lib/a:1'), undefined);
    const single = registry.requests.filter((r) => r.path.startsWith('/v2/lib/a/')).map((r) => `${r.method} ${r.path}`).sort();
    expect(single.length).toBeGreaterThan(0);
    registry.requests.length = 0;

    const svc = await service();
    const topLayer = imageA.layers[1]!;
    const held = holdGets((path) => (path.endsWith(`/blobs/${topLayer.digest}`) ? topLayer.blob : undefined));
    const first = svc.pull(ref('lib/a:1'), undefined);
    await held.reached;
    const second = svc.pull(ref('lib/a:1'), undefined);
    const third = svc.pull(ref('lib/a:1'), undefined);
    held.release();
    const views = await Promise.all([first, second, third]);
    expect(views.map((v) => v.id)).toEqual([imageA.config.digest, imageA.config.digest, imageA.config.digest]);
    const shared = registry.requests.filter((r) => r.path.startsWith('/v2/lib/a/')).map((r) => `${r.method} ${r.path}`).sort();
    expect(shared).toEqual(single);
    // Once finished, a new pull asks the registry again (the tag may have moved).
    registry.requests.length = 0;
    await svc.pull(ref('lib/a:1'), undefined);
    expect(registry.requests.some((r) => r.path.includes('/v2/lib/a/manifests/'))).toBe(true);
  });

  it('RemoveImage frees what only that image used and keeps what another image shares', async () => {
    const svc = await service();
    await svc.pull(ref('lib/a:1'), undefined);
    await svc.pull(ref('lib/b:1'), undefined);
    expect(svc.snapshots.list()).toHaveLength(3); // the base chain is shared
    await svc.remove(ref('lib/a:1'));
    expect(await svc.find(ref('lib/a:1'))).toBeUndefined();
    expect(await svc.find(imageA.config.digest)).toBeUndefined();
    expect((await svc.content.list()).sort()).toEqual(digestsOf(imageB));
    expect(svc.snapshots.list().map((s) => s.chainId).sort()).toEqual([...chainsOf(imageB)].sort());
    // Idempotent, by any name.
    await svc.remove(ref('lib/a:1'));
    await svc.remove(imageA.config.digest);
    await svc.remove(imageB.config.digest);
    expect(await svc.content.list()).toEqual([]);
    expect(svc.snapshots.list()).toEqual([]);
    expect(await svc.list()).toEqual([]);
    // And a restart brings nothing back.
    await stop(svc);
    expect(await (await service()).list()).toEqual([]);
  });

  it('RemoveImage of an image a container uses keeps the container rootfs until the container is gone', async () => {
    const svc = await service();
    const view = await svc.pull(ref('lib/a:1'), undefined);
    // A container's writable layer on the image, as ContainerService prepares it.
    const prepared = await svc.snapshots.prepare('container-1', view.chainId);
    // Stats find the container's writable layer through the service.
    expect(svc.writableLayer('container-1')).toEqual({ dir: prepared.upperdir, mountpoint: join(dir, 'root', 'snapshots', 'active') });
    expect(svc.writableLayer('container-2')).toBeUndefined();
    await svc.remove(view.id);
    expect(await svc.find(view.id)).toBeUndefined();
    // The blobs go (nothing reads them again); the unpacked layers stay under the container.
    expect(await svc.content.list()).toEqual([]);
    expect(svc.snapshots.mounts('container-1').lowerdirs).toEqual(prepared.lowerdirs);
    expect(await readFile(join(prepared.lowerdirs[0]!, 'a', 'file'), 'utf8')).toBe('from a\n');
    // A restart's GC keeps them too: the active snapshot is on disk.
    await stop(svc);
    const restarted = await service();
    expect(restarted.snapshots.list()).toHaveLength(2);
    await restarted.snapshots.remove('container-1');
    await restarted.collectGarbage();
    expect(restarted.snapshots.list()).toEqual([]);
  });

  it('a failed pull leaves no blob, snapshot or record behind', async () => {
    const svc = await service();
    const missing = await layer({ 'c/file': 'never served\n' });
    const imageC = buildImage({ layers: [base, missing] });
    registry.serveManifest('lib/c', '1', imageC.manifest.mediaType, imageC.manifest.bytes);
    registry.serveBlob(imageC.config.digest, imageC.config.bytes);
    // The base layer is served, the second is not: the pull fails after storing the first.
    const err = await svc.pull(ref('lib/c:1'), undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain(missing.digest);
    expect(registry.requests.some((r) => r.path.endsWith(`/blobs/${base.digest}`))).toBe(true);
    expect(await svc.list()).toEqual([]);
    expect(await svc.content.list()).toEqual([]);
    expect(svc.snapshots.list()).toEqual([]);
  });

  it('a failed pull reports the layer that failed, not the abort it caused in a layer still downloading', async () => {
    const svc = await service();
    const big = await layer({ 'big/file': 'x'.repeat(256 * 1024) });
    const missing = await layer({ 'd/file': 'never served\n' });
    const imageD = buildImage({ layers: [big, missing] });
    registry.serveManifest('lib/d', '1', imageD.manifest.mediaType, imageD.manifest.bytes);
    registry.serveBlob(imageD.config.digest, imageD.config.bytes);
    // The lower layer's body stops half way until the pull has failed: the failure of the upper
    // one (not served) aborts it mid-stream, and the commit chain sees that abort first.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    registry.handle((req: IncomingMessage, res: ServerResponse) => {
      if (req.method !== 'GET' || !(req.url ?? '').endsWith(`/blobs/${big.digest}`)) return false;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.blob.length });
      res.write(big.blob.subarray(0, big.blob.length >> 1));
      void gate.then(() => res.destroy());
      return true;
    });
    try {
      const err = await svc.pull(ref('lib/d:1'), undefined).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NotFoundError);
      expect((err as Error).message).toContain(missing.digest);
    } finally {
      release();
    }
    expect(await svc.list()).toEqual([]);
    expect(svc.snapshots.list()).toEqual([]);
  });

  it('a pull in flight keeps the layers it needs from a concurrent RemoveImage', async () => {
    const svc = await service();
    await svc.pull(ref('lib/a:1'), undefined);
    const bTop = imageB.layers[1]!;
    const held = holdGets((path) => (path.endsWith(`/blobs/${bTop.digest}`) ? bTop.blob : undefined));
    const pullB = svc.pull(ref('lib/b:1'), undefined);
    await held.reached;
    // B found the base layer (blob and snapshot) on the node and is downloading its own layer;
    // removing A now must not take the base away from under it.
    await svc.remove(ref('lib/a:1'));
    expect(await svc.content.list()).toContain(base.digest);
    held.release();
    const b = await pullB;
    const lowers = svc.snapshots.lowerDirs(b.chainId!);
    expect(await readFile(join(lowers[1]!, 'etc', 'base'), 'utf8')).toBe('base layer\n');
    expect((await svc.content.list()).sort()).toEqual(digestsOf(imageB));
  });
});
