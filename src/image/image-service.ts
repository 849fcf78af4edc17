// The image domain behind the CRI ImageService: pull, import, list, status, remove, fs usage.
// It owns the content store, the snapshotter and the image records, and the leases that keep
// an in-flight pull's blobs and snapshots safe from a concurrent RemoveImage's garbage collection.
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { CribConfig } from '../config/config.js';
import { NotFoundError } from '../errors.js';
import { crashPoint } from '../lifecycle/crash-point.js';
import { log, type Logger } from '../log.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { ContentStore } from './content-store.js';
import { ingestImage, type ImageSource } from './image-ingest.js';
import { UnpackPool } from './unpack/unpack-pool.js';
import type { ImageConfig } from './image-config.js';
import { ImageStore, type ImageRecord } from './image-store.js';
import { imageLimitsFromConfig } from './limits.js';
import { readImageArchive, type ArchiveImage } from './image-archive.js';
import { parseReference, type ImageReference } from './reference.js';
import { PullProgress } from './pull-progress.js';
import { writeImageLayout } from './image-export.js';
import type { RegistryClient } from './registry/client.js';
import { hostsConfigFromCrib, withDefaults, type RegistryHostsConfig } from './registry/hosts.js';
import type { CriAuth } from './registry/types.js';
import { VolumeReferences } from './volume-references.js';
import { isoTime } from '../time.js';

export interface ImageView extends ImageRecord {
  /** The image config's USER ("" when unset). */
  user: string;
  annotations: Record<string, string>;
  pinned: boolean;
}

export interface FsUsage {
  mountpoint: string;
  bytes: number;
  inodes: number;
}

const ID_RE = /^(?:sha256:)?([0-9a-f]{12,64})$/;

export class ImageService {
  private readonly inflightPulls = new Map<string, Promise<ImageView>>();
  private readonly views = new WeakMap<ImageRecord, ImageView>();
  /** Progress of each pull in flight, by the same key as inflightPulls. */
  private readonly pullProgress = new Map<string, PullProgress>();
  private readonly pullListeners = new Set<(p: PullProgress, err: unknown) => void>();
  /** Digests and chain ids that in-flight pulls/imports are writing; GC leaves them alone. */
  private readonly leases = new Map<string, number>();
  private gcRunning: Promise<void> = Promise.resolve();
  /** The disk usage measurement running, shared by every fsInfo call made meanwhile. */
  private fsInfoInFlight: Promise<{ images: FsUsage; containers: FsUsage }> | undefined;
  /** Images that containers mount as image volumes: RemoveImage refuses them. */
  readonly volumeReferences = new VolumeReferences();
  /**
   * The threads layers unpack on, one per layer downloading at once; none run until the first
   * pull, and an idle one goes after 10 s (unpack-pool.ts).
   */
  private readonly unpackPool: UnpackPool;
  /**
   * The registry client (image/registry/), loaded with the first pull: a node whose images are
   * all present pulls nothing after a restart, and the client's modules cost an idle daemon
   * 0.3 MiB of heap for nothing (a failed load is tried again by the next pull).
   */
  private registryClient: Promise<RegistryClient> | undefined;

  private constructor(
    private readonly config: CribConfig,
    readonly content: ContentStore,
    readonly snapshots: Snapshotter,
    readonly records: ImageStore,
    private readonly registryHosts: RegistryHostsConfig,
  ) {
    this.unpackPool = new UnpackPool(config.image.max_concurrent_downloads);
  }

  /** `snapshots` is the node's snapshotter (Snapshotter.open), shared with the containers. */
  static async open(config: CribConfig, snapshots: Snapshotter): Promise<ImageService> {
    const content = new ContentStore(config.root);
    await content.init();
    await content.cleanupIngest();
    const records = new ImageStore(config.root);
    await records.load();
    const registryHosts = hostsConfigFromCrib(config);
    // The registry client is made with the first pull; its config is checked now, so a bad
    // mirror URL stops the daemon at start, not at some later pull.
    withDefaults(registryHosts);
    const service = new ImageService(config, content, snapshots, records, registryHosts);
    await service.collectGarbage();
    return service;
  }

  async close(): Promise<void> {
    // A client whose load failed has nothing to close.
    const registry = await this.registryClient?.catch(() => undefined);
    await registry?.close();
    await this.unpackPool.close();
    // Layers a removal left to delete in the background: a clean stop leaves none for start-up.
    await this.snapshots.settled();
  }

  // ---- lookups ------------------------------------------------------------------------------

  /** Find an image by id, id prefix, tag or digest reference; undefined when there is none. */
  async find(ref: string): Promise<ImageRecord | undefined> {
    if (ID_RE.test(ref)) {
      const byId = this.records.resolve(ref);
      if (byId) return byId;
    }
    let parsed: ImageReference;
    try {
      parsed = parseReference(ref);
    } catch (err) {
      // A bare hex id that matched nothing is simply absent, not malformed.
      if (ID_RE.test(ref)) return undefined;
      throw err;
    }
    return this.records.resolve(parsed.digest ? `${parsed.name}@${parsed.digest}` : `${parsed.name}:${parsed.tag ?? 'latest'}`);
  }

  /** Store a record, keeping the tags and digests an earlier pull of the same image gave it. */
  private async save(rec: Omit<ImageRecord, 'pinned'>): Promise<ImageRecord> {
    const old = this.records.get(rec.id);
    const merged: ImageRecord = {
      ...rec,
      repoTags: [...new Set([...(old?.repoTags ?? []), ...rec.repoTags])],
      repoDigests: [...new Set([...(old?.repoDigests ?? []), ...rec.repoDigests])],
      pinned: old?.pinned ?? false,
      createdAt: old?.createdAt ?? rec.createdAt,
    };
    await this.records.put(merged);
    return this.records.get(rec.id) ?? merged;
  }

  async list(filter?: string): Promise<ImageView[]> {
    if (filter !== undefined) {
      const one = await this.find(filter);
      return one ? [this.view(one)] : [];
    }
    return this.records.list().map((r) => this.view(r));
  }

  async status(ref: string): Promise<ImageView | undefined> {
    const rec = await this.find(ref);
    return rec ? this.view(rec) : undefined;
  }

  // ---- pull ---------------------------------------------------------------------------------

  /** Pull an image; concurrent pulls of the same reference share one download. */
  pull(refText: string, auth: CriAuth | undefined): Promise<ImageView> {
    const ref = parseReference(refText);
    const key = ref.toString();
    const running = this.inflightPulls.get(key);
    if (running) return running;
    const progress = new PullProgress(key);
    // The shared pull is not cancelled by one caller going away: kubelet's retry will want it.
    const p = this.doPull(ref, auth, progress).then(
      (view) => {
        this.pullFinished(key, progress, undefined);
        return view;
      },
      (err: unknown) => {
        this.pullFinished(key, progress, err);
        throw err;
      },
    );
    this.inflightPulls.set(key, p);
    this.pullProgress.set(key, progress);
    return p;
  }

  /** The progress of a pull in flight of this reference (as pull() was given it), if any. */
  progressOf(refText: string): PullProgress | undefined {
    return this.pullProgress.get(parseReference(refText).toString());
  }

  /** Called once per pull when it ends (err undefined on success); returns an unsubscribe. */
  onPullFinished(listener: (p: PullProgress, err: unknown) => void): () => void {
    this.pullListeners.add(listener);
    return () => this.pullListeners.delete(listener);
  }

  private pullFinished(key: string, progress: PullProgress, err: unknown): void {
    progress.finished(err === undefined);
    this.inflightPulls.delete(key);
    this.pullProgress.delete(key);
    for (const l of this.pullListeners) {
      try {
        l(progress, err);
      } catch (listenerErr) {
        log.warn({ err: listenerErr }, 'a pull listener failed');
      }
    }
  }

  private registry(): Promise<RegistryClient> {
    this.registryClient ??= import('./registry/client.js').then(
      ({ RegistryClient }) => new RegistryClient(this.registryHosts),
      (err: unknown) => {
        this.registryClient = undefined;
        throw err;
      },
    );
    return this.registryClient;
  }

  private async doPull(ref: ImageReference, auth: CriAuth | undefined, progress: PullProgress): Promise<ImageView> {
    const started = Date.now();
    const plog = log.child({ image: ref.toString() });
    const lease = this.newLease();
    try {
      const registry = await this.registry();
      const resolved = await registry.resolve(ref, { auth });
      progress.resolved(resolved.layers);
      const record = await this.storeImage({
        name: ref.toString(),
        configDescriptor: resolved.configDescriptor,
        layers: resolved.layers,
        openBlob: (desc) => registry.openBlob(resolved, desc, { auth }),
        manifestDigest: resolved.manifestDigest,
        manifestBytes: resolved.manifestBytes,
        repoTags: ref.digest === undefined ? [`${ref.name}:${ref.tag ?? 'latest'}`] : [],
        repoDigests: [`${ref.name}@${resolved.indexDigest ?? resolved.manifestDigest}`],
      }, lease.add, plog, progress);
      crashPoint('PullImage:after-record');
      plog.info({ id: record.id, ms: Date.now() - started, flushMs: progress.flushMs }, 'image pulled');
      return this.view(record);
    } catch (err) {
      plog.info({ err: (err as Error).message, ms: Date.now() - started }, 'image pull failed');
      throw err;
    } finally {
      lease.release();
      // A failed pull leaves no blob or snapshot behind that no image uses.
      await this.collectGarbage();
    }
  }

  /**
   * Content, snapshots and record of one image, for pull and import alike. ingestImage returns
   * with the layers flushed, so no record ever points at unflushed data.
   */
  private async storeImage(
    img: ImageSource & Pick<ArchiveImage, 'manifestDigest' | 'manifestBytes' | 'repoTags' | 'repoDigests'>,
    lease: (what: string) => void,
    ilog: Logger,
    progress?: PullProgress,
  ): Promise<ImageRecord> {
    const ingested = await ingestImage(
      {
        content: this.content, snapshots: this.snapshots, concurrency: this.config.image.max_concurrent_downloads, log: ilog,
        limits: imageLimitsFromConfig(this.config), unpackPool: this.unpackPool,
      },
      img,
      { lease, progress },
    );
    // The manifest is kept so the image's digests can be verified and served later.
    await this.storeBytes(img.manifestDigest, img.manifestBytes);
    lease(img.manifestDigest);
    crashPoint('PullImage:after-layers');
    return this.save({
      id: img.configDescriptor.digest,
      repoTags: img.repoTags,
      repoDigests: img.repoDigests,
      size: img.configDescriptor.size + img.layers.reduce((n, l) => n + l.size, 0),
      configDigest: img.configDescriptor.digest,
      manifestDigest: img.manifestDigest,
      chainId: ingested.chainIds[ingested.chainIds.length - 1],
      diffIds: ingested.diffIds,
      layers: img.layers,
      config: ingested.config,
      createdAt: isoTime(),
    });
  }

  // ---- import -------------------------------------------------------------------------------

  /** Load every image of an OCI layout or `docker save` tar. */
  async importArchive(path: string): Promise<ImageView[]> {
    const lease = this.newLease();
    const archive = await readImageArchive(path, join(this.config.root, 'tmp'), imageLimitsFromConfig(this.config));
    try {
      const views: ImageView[] = [];
      for (const img of archive.images) {
        const name = img.repoTags[0] ?? img.manifestDigest;
        const record = await this.storeImage({ ...img, name, openBlob: (d) => archive.openBlob(d) }, lease.add, log);
        views.push(this.view(record));
      }
      log.info({ path, images: views.map((v) => v.id) }, 'images imported');
      return views;
    } finally {
      await archive.close();
      lease.release();
      await this.collectGarbage();
    }
  }

  /** Write one image as an OCI layout tar at `path` (a new file). */
  async exportArchive(ref: string, path: string): Promise<ImageView> {
    const rec = await this.find(ref);
    if (!rec) throw new NotFoundError(`image "${ref}" is not on this node`);
    // Its blobs stay while we read them, even if the image is removed meanwhile.
    const lease = this.newLease();
    [rec.manifestDigest, rec.configDigest, ...rec.layers.map((l) => l.digest)].forEach(lease.add);
    try {
      await writeImageLayout(this.content, rec, path);
      log.info({ id: rec.id, path }, 'image exported');
      return this.view(rec);
    } finally {
      lease.release();
    }
  }

  // ---- remove and garbage collection --------------------------------------------------------

  /** Remove an image and all its tags (the CRI says so); idempotent. */
  async remove(ref: string): Promise<void> {
    const rec = await this.find(ref);
    if (!rec) return;
    this.volumeReferences.assertUnused(rec.id, ref);
    await this.records.remove(rec.id);
    crashPoint('RemoveImage:after-record');
    log.info({ id: rec.id, tags: rec.repoTags }, 'image removed');
    await this.collectGarbage();
  }

  /** Delete blobs and snapshots that no image record, container or in-flight pull uses. */
  collectGarbage(): Promise<void> {
    // Serialised: two GCs racing would both decide on stale views of the records.
    this.gcRunning = this.gcRunning.then(async () => {
      const keepDigests = new Set([...this.records.referencedDigests(), ...this.leases.keys()]);
      const keepChains = new Set([...this.records.referencedChainIds(), ...this.leases.keys()]);
      // Blobs and snapshots are separate stores, each decided from the views just taken: they
      // are deleted side by side (each file operation is a thread-pool round trip), blobs not
      // synced one by one: a blob a crash brings back is garbage the start-up collection removes
      // again, and each directory fsync cost RemoveImage about 2 ms.
      const blobs = async (): Promise<void> => {
        const dead = (await this.content.list()).filter((d) => !keepDigests.has(d));
        await Promise.all(dead.map((d) => this.content.delete(d)));
      };
      // Both settle before the next collection may start, even when one fails.
      const results = await Promise.allSettled([blobs(), this.snapshots.gc(keepChains)]);
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    }).catch((err: unknown) => log.error({ err }, 'image garbage collection failed'));
    return this.gcRunning;
  }

  /**
   * The images' and the containers' disk usage (ImageFsInfo). Concurrent callers share one
   * measurement: each walks every writable layer, for as long as the largest takes, and kubelet's
   * eviction manager, its image garbage collector and its summary API each ask on their own
   * period; without this, a layer of millions of files had them walking it side by side.
   */
  fsInfo(): Promise<{ images: FsUsage; containers: FsUsage }> {
    this.fsInfoInFlight ??= this.measureFs().finally(() => {
      this.fsInfoInFlight = undefined;
    });
    return this.fsInfoInFlight;
  }

  private async measureFs(): Promise<{ images: FsUsage; containers: FsUsage }> {
    const [content, { snaps, active }] = await Promise.all([
      this.content.usage(),
      this.snapshots.activeUsage().then(async (active) => ({ snaps: await this.snapshots.usage(active), active })),
    ]);
    // Snapshot usage covers the containers' writable layers too; report those separately.
    return {
      images: {
        mountpoint: this.snapshots.dir,
        bytes: content.bytes + snaps.bytes - active.bytes,
        inodes: content.inodes + snaps.inodes - active.inodes,
      },
      containers: { mountpoint: this.activeDir(), bytes: active.bytes, inodes: active.inodes },
    };
  }

  /**
   * A container's writable layer (its active snapshot `key`) for stats: the upper dir, and the
   * dir every writable layer lives under (the filesystem reported as its mountpoint).
   */
  writableLayer(key: string): { dir: string; mountpoint: string } | undefined {
    try {
      return { dir: this.snapshots.mounts(key).upperdir, mountpoint: this.activeDir() };
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** Where the snapshotter keeps containers' writable layers. */
  private activeDir(): string {
    return join(this.snapshots.dir, 'active');
  }

  private async storeBytes(digest: string, bytes: Buffer): Promise<void> {
    await this.content.ingest({ digest, size: bytes.length }, async () => Readable.from([bytes]));
  }

  /** Digests and chain ids an ingest is writing, kept from GC until release(). */
  private newLease(): { add: (what: string) => void; release: () => void } {
    const leased: string[] = [];
    return {
      add: (what) => {
        leased.push(what);
        this.leases.set(what, (this.leases.get(what) ?? 0) + 1);
      },
      release: () => {
        for (const what of leased) {
          const n = (this.leases.get(what) ?? 1) - 1;
          if (n <= 0) this.leases.delete(what);
          else this.leases.set(what, n);
        }
      },
    };
  }

  private isPinned(rec: ImageRecord): boolean {
    const pins = this.config.image.pinned_images;
    if (pins.length === 0) return false;
    const names = new Set([rec.id, ...rec.repoTags, ...rec.repoDigests]);
    return pins.some((p) => {
      if (names.has(p)) return true;
      try {
        const r = parseReference(p);
        return names.has(r.digest ? `${r.name}@${r.digest}` : `${r.name}:${r.tag ?? 'latest'}`);
      } catch {
        return false;
      }
    });
  }

  /**
   * The record as callers see it, made once per record: records are replaced, never changed, and
   * the pinned images are fixed at start-up, so a record's view never changes (the server encodes
   * each view's CRI Image once). Callers must not change it either.
   */
  view(rec: ImageRecord): ImageView {
    const known = this.views.get(rec);
    if (known) return known;
    const config = rec.config as ImageConfig;
    const view: ImageView = {
      ...rec,
      user: config.config?.User ?? '',
      annotations: config.config?.Labels ?? {},
      pinned: rec.pinned || this.isPinned(rec),
    };
    this.views.set(rec, view);
    return view;
  }
}
