// Overlay snapshots. Committed snapshots are unpacked layers, one per chain ID, immutable once
// committed; active snapshots are a container's writable upper/work dirs over a committed chain.
//
//   <root>/snapshots/<n>/fs              committed layer contents (an overlay lower dir)
//   <root>/snapshots/<n>/snapshot.json   { id, chainId, parent, diffId, size, createdAt }
//   <root>/snapshots/active/<key>/{fs,work,snapshot.json}
//   <root>/snapshots/active/<key>/{pad0,pad1,snapshot.json}   a read-only view (image volumes)
//   <root>/snapshots/tmp-*               unpacks in progress; swept at start-up
//   <root>/snapshots/active/.trash/*     removed snapshots (active and committed) being deleted;
//                                        swept at start-up
//
// Committed dirs are numbered rather than named by chain ID: mount(2) takes all lowerdirs in
// one page, and "/var/lib/crib/snapshots/17/fs" lets ~130 layers fit where 64-hex names
// would fit ~40 (overlay-mount.ts falls back to relative paths beyond that).
//
// Lifecycle: ensureLayer (tmp → unpack → record → rename to <n>) → prepare(key) → mount →
// unmount → remove(key); removeCommitted / gc only for chains no child or active snapshot uses.
import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AlreadyExistsError, DataLossError, FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError,
} from '../errors.js';
import { digestHex } from '../digest/digest.js';
import { log } from '../log.js';
import { fsyncDir } from '../store/atomic-file.js';
import { defineSchema } from '../store/schema.js';
import { StateFile } from '../store/state-file.js';
import { Trash } from '../store/trash.js';
import { removeTree } from '../sys/remove-tree.js';
import { diskUsage, type DiskUsage } from '../sys/disk-usage.js';
import { allOrFirstError } from '../lifecycle/all-or-first-error.js';
import { umaskKeeps } from '../process-umask.js';
import { isMountPoint } from '../sys/mount-point.js';
import { chainIdOf } from '../digest/chain-id.js';
import { mountIdmappedLayers, mountIdmappedOverlay, mountOverlay, mountReadOnlyOverlay, overlayOptions, unmountOverlay } from './overlay-mount.js';
import { FlushLedger, SnapshotFlush, type LayerVouching, type Syncfs } from './snapshot-flush.js';
import { isoTime } from '../time.js';

/** A rootfs for a user-namespaced pod: its pinned namespace and the host ids of its root. */
export interface IdmappedRootfs {
  usernsPath: string;
  rootUid: number;
  rootGid: number;
}

export interface CommittedSnapshot {
  id: number;
  chainId: string;
  parent?: string;
  diffId?: string;
  /** Bytes of file content in this layer alone. */
  size: number;
  createdAt: string;
}

export interface ActiveSnapshot {
  key: string;
  chainId?: string;
  createdAt: string;
  /**
   * A read-only view of the chain (an image volume): no upper dir, mounted by mountView. Like
   * any active snapshot it keeps its chain from gc and removeCommitted until it is removed.
   */
  view?: true;
}

export interface PreparedSnapshot {
  key: string;
  upperdir: string;
  workdir: string;
  /** Top layer first (overlay lowerdir order). */
  lowerdirs: string[];
  /** The overlay mount options with absolute paths. */
  mountOptions: string;
}

/** What an unpack callback may report; a diffId is checked against the chain ID. */
export interface LayerUnpackInfo {
  diffId?: string;
  size?: number;
}

export interface SnapshotterOptions {
  /** A pull's flushes (default: syncfs off the event loop); tests count them. */
  syncfs?: Syncfs;
}

const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const RECORD = 'snapshot.json';

/** The on-disk schema of <n>/snapshot.json (see store/schema.ts to change it). */
export const COMMITTED_SNAPSHOT_RECORD = defineSchema<CommittedSnapshot>('committed snapshot record');
/** The on-disk schema of active/<key>/snapshot.json. */
export const ACTIVE_SNAPSHOT_RECORD = defineSchema<ActiveSnapshot>('active snapshot record');

// Each snapshot's record lives in the snapshot's own dir, written before the rename that makes
// the dir visible: a snapshot dir exists complete with its record, or not at all. So the records
// stay one document per dir rather than one index file, which a crash between the rename and an
// index write could leave out of step with the dirs.
const committedRecord = (dir: string) => new StateFile(join(dir, RECORD), COMMITTED_SNAPSHOT_RECORD, 0o644);
const activeRecord = (dir: string) => new StateFile(join(dir, RECORD), ACTIVE_SNAPSHOT_RECORD, 0o644);

export class Snapshotter {
  readonly dir: string;
  private readonly activeDir: string;
  /**
   * Removed snapshots, active and committed, deleted in the background; cleanupTemp sweeps what
   * is left. One trash: its entries count in usage() (they hold disk until deleted).
   */
  private readonly trash: Trash;
  private readonly committed = new Map<string, CommittedSnapshot>();
  private readonly active = new Map<string, ActiveSnapshot>();
  private readonly inflight = new Map<string, Promise<CommittedSnapshot>>();
  /** Parents of unpacks in progress: they must survive gc and removal until the child commits. */
  private readonly inflightParents = new Map<string, string>();
  private nextId = 1;
  /** Layers are committed unflushed: a pull flushes them (openFlush) before it records its image. */
  private readonly flushes = new FlushLedger();
  /**
   * Committed layers a failed flush may have lost pages of: no pull reuses them (get and has do
   * not see them), the next one to need one unpacks it again, and gc removes the rest.
   */
  private readonly lost = new Set<string>();
  /** Layers committed for a pull whose flush has not yet vouched for them (snapshot-flush.ts). */
  private readonly unvouched = new Map<string, { settled: Promise<void>; settle: (lost?: Error) => void }>();
  /**
   * Disk usage of each committed snapshot dir. Committed snapshots never change, so each is
   * walked once; kubelet asks for ImageFsInfo every few seconds and a full walk of every layer
   * each time would cost seconds of CPU on a node with many images.
   */
  private readonly usageCache = new Map<string, DiskUsage>();
  /**
   * The active snapshots made by this snapshotter (not loaded from disk), and where it mounted
   * each one and has not unmounted it since (a target mounted twice is listed twice). Every
   * mount of those went through mount or mountView, so whether one is still mounted is asked of
   * those targets alone; one an earlier daemon made may be mounted anywhere it mounted it.
   */
  private readonly madeHere = new Set<string>();
  private readonly mountedAt = new Map<string, string[]>();

  /**
   * The node's snapshotter, as the daemon makes it once and hands to the image and container
   * services: loaded, swept of interrupted unpacks. Layers commit unflushed, and a pull flushes
   * them once (openFlush) before its image record is written; a crash can leave a committed layer
   * no image points at, and the image service's start-up GC removes exactly those.
   */
  static async open(root: string): Promise<Snapshotter> {
    const snapshots = new Snapshotter(root);
    await snapshots.load();
    await snapshots.cleanupTemp();
    return snapshots;
  }

  constructor(root: string, private readonly opts: SnapshotterOptions = {}) {
    if (/[,:\s\\]/.test(root)) {
      throw new InvalidArgumentError(`snapshot root ${JSON.stringify(root)} must not contain ',', ':', '\\' or spaces (overlay option syntax)`);
    }
    this.dir = join(root, 'snapshots');
    this.activeDir = join(this.dir, 'active');
    // A key never starts with '.' (checkKey): the trash cannot be taken for a snapshot.
    this.trash = new Trash(join(this.activeDir, '.trash'), { syncParent: true, unboundedTrees: true });
  }

  /** Create the dirs and load every record from disk. Call once at start-up. */
  async load(): Promise<void> {
    // Private (daemon/private-dirs.ts): layers hold setuid binaries and world-writable dirs.
    await mkdir(this.activeDir, { recursive: true, mode: 0o700 });
    this.committed.clear();
    this.lost.clear();
    this.active.clear();
    this.madeHere.clear();
    this.mountedAt.clear();
    for (const name of await readdir(this.dir)) {
      if (!/^[0-9]+$/.test(name)) continue;
      const rec = await committedRecord(join(this.dir, name)).read();
      if (!rec) continue;
      this.committed.set(rec.chainId, rec);
      this.nextId = Math.max(this.nextId, rec.id + 1);
    }
    for (const name of await readdir(this.activeDir)) {
      if (!KEY_RE.test(name)) continue;
      const rec = await activeRecord(join(this.activeDir, name)).read();
      if (rec) this.active.set(rec.key, rec);
    }
  }

  /** Remove half-made unpacks and removals a crash left behind. Call once at start-up. */
  async cleanupTemp(): Promise<number> {
    let removed = 0;
    for (const [dir, prefix] of [[this.dir, 'tmp-'], [this.activeDir, '.tmp-']] as const) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (!name.startsWith(prefix)) continue;
        await removeTree(join(dir, name));
        removed += 1;
      }
    }
    removed += await this.trash.sweep();
    // Numbered dirs without a record never finished committing (the record goes in first).
    for (const name of await readdir(this.dir)) {
      if (/^[0-9]+$/.test(name) && ![...this.committed.values()].some((s) => String(s.id) === name)) {
        await removeTree(join(this.dir, name));
        removed += 1;
      }
    }
    if (removed > 0) log.info({ removed }, 'removed interrupted snapshot work');
    return removed;
  }

  get(chainId: string): CommittedSnapshot | undefined {
    return this.lost.has(chainId) ? undefined : this.committed.get(chainId);
  }

  has(chainId: string): boolean {
    return this.get(chainId) !== undefined;
  }

  list(): CommittedSnapshot[] {
    return [...this.committed.values()];
  }

  listActive(): ActiveSnapshot[] {
    return [...this.active.values()];
  }

  /**
   * Make the committed snapshot `chainId` exist, unpacking it on `parentChainId` with `unpack`
   * (into an empty dir) when missing. Concurrent calls for one chain ID share the work; a failed
   * unpack leaves nothing behind. `owner` is the flush of the pull unpacking it, the one to vouch
   * for it (snapshot-flush.ts); a layer committed without one counts as vouched for.
   */
  async ensureLayer(chainId: string, parentChainId: string | undefined,
    unpack: (dir: string) => Promise<LayerUnpackInfo | void>, owner?: SnapshotFlush): Promise<CommittedSnapshot> {
    digestHex(chainId);
    const have = this.get(chainId);
    if (have) return have;
    const shared = this.inflight.get(chainId);
    if (shared) return shared;
    if (parentChainId !== undefined && this.lost.has(parentChainId)) {
      throw new UnavailableError(`cannot unpack snapshot ${chainId}: a failed flush of the snapshot filesystem may have lost part of its parent ${parentChainId}; pull the image again`);
    }
    if (parentChainId !== undefined && !this.has(parentChainId)) {
      throw new FailedPreconditionError(`cannot unpack snapshot ${chainId}: its parent ${parentChainId} is not committed`);
    }
    const work = this.commit(chainId, parentChainId, unpack, owner).finally(() => {
      this.inflight.delete(chainId);
      this.inflightParents.delete(chainId);
    });
    this.inflight.set(chainId, work);
    if (parentChainId !== undefined) this.inflightParents.set(chainId, parentChainId);
    return work;
  }

  private async commit(chainId: string, parent: string | undefined,
    unpack: (dir: string) => Promise<LayerUnpackInfo | void>, owner: SnapshotFlush | undefined): Promise<CommittedSnapshot> {
    const tmp = join(this.dir, `tmp-${randomBytes(8).toString('hex')}`);
    const fs = join(tmp, 'fs');
    try {
      await mkdir(tmp, { mode: 0o700 });
      await mkdir(fs, { mode: 0o755 });
      const info = (await unpack(fs)) ?? {};
      if (info.diffId !== undefined) {
        const got = chainIdOf(parent, info.diffId);
        if (got !== chainId) {
          throw new DataLossError(`layer unpacked for snapshot ${chainId} has diffID ${info.diffId}, which makes chain ${got}`);
        }
      }
      const id = this.nextId++;
      const rec: CommittedSnapshot = {
        id,
        chainId,
        ...(parent !== undefined ? { parent } : {}),
        ...(info.diffId !== undefined ? { diffId: info.diffId } : {}),
        size: info.size ?? (await this.layerUsage(chainId, fs)).bytes,
        createdAt: isoTime(),
      };
      await committedRecord(tmp).write(rec);
      // A lost copy goes first: a crash in between leaves the chain missing (pulled again), never
      // two records of it, one over pages the disk lost.
      const lostCopy = this.committed.get(chainId);
      if (lostCopy) await this.forget(lostCopy);
      await rename(tmp, join(this.dir, String(id)));
      await fsyncDir(this.dir);
      this.committed.set(chainId, rec);
      this.flushes.committed();
      if (owner) {
        owner.adopt(chainId);
        let settle!: (lost?: Error) => void;
        const settled = new Promise<void>((resolve, reject) => (settle = (lost) => (lost ? reject(lost) : resolve())));
        // Nobody may be waiting when a layer is lost.
        settled.catch(() => undefined);
        this.unvouched.set(chainId, { settled, settle });
      }
      return rec;
    } catch (err) {
      await removeTree(tmp);
      throw err;
    }
  }

  /** The fs dirs of `chainId` and its ancestors, top layer first. */
  lowerDirs(chainId: string): string[] {
    const out: string[] = [];
    let cur: string | undefined = chainId;
    while (cur !== undefined) {
      const rec = this.committed.get(cur);
      if (!rec) throw new NotFoundError(`snapshot ${cur}${cur === chainId ? '' : ` (an ancestor of ${chainId})`} is not committed`);
      out.push(this.fsDir(rec));
      cur = rec.parent;
    }
    return out;
  }

  /**
   * Create the writable snapshot `key` on top of `chainId` (undefined: an empty image). With
   * `publishAfter` (CreateContainer: the durable record naming the layer), the dirs and record
   * are made in the temp dir meanwhile and renamed into place only once it resolves; when it
   * rejects, the temp dir is removed and prepare rejects with its error.
   */
  async prepare(key: string, chainId: string | undefined, opts: { publishAfter?: Promise<unknown> } = {}): Promise<PreparedSnapshot> {
    await this.createActive({ key, ...(chainId !== undefined ? { chainId } : {}), createdAt: isoTime() }, opts.publishAfter, async (tmp) => {
      // Side by side: each is a file system round trip on CreateContainer's path.
      await allOrFirstError([
        // fs/ is the upper dir: its mode is the mode of the container's "/" (set by hand only
        // when the umask would narrow it).
        (async () => {
          await mkdir(join(tmp, 'fs'), { mode: 0o755 });
          if (!umaskKeeps(0o755)) await chmod(join(tmp, 'fs'), 0o755);
        })(),
        mkdir(join(tmp, 'work'), { mode: 0o700 }),
        chainId === undefined ? mkdir(join(tmp, 'empty')) : undefined,
      ]);
    });
    return this.mounts(key);
  }

  /**
   * Create the read-only view `key` of `chainId` (undefined: an image without layers). It holds
   * the chain like a writable snapshot does, so the layers stay while it exists.
   */
  async prepareView(key: string, chainId: string | undefined): Promise<void> {
    const rec: ActiveSnapshot = { key, ...(chainId !== undefined ? { chainId } : {}), createdAt: isoTime(), view: true };
    await this.createActive(rec, undefined, async (tmp) => {
      // Empty lower dirs that pad a chain of fewer than two layers (overlayfs needs two without
      // an upper dir); their mode is the mode of an empty image's root.
      for (const pad of ['pad0', 'pad1']) {
        await mkdir(join(tmp, pad));
        await chmod(join(tmp, pad), 0o755);
      }
    });
  }

  /**
   * Makes active snapshot `rec.key`: its dirs (`populate`) and record in a temporary dir, renamed
   * into place whole, so a crash leaves either nothing or all of it. Claimed in memory first, so
   * a second create of the key is refused while the first runs.
   *
   * No directory is synced (two fsyncs off CreateContainer): an active snapshot is only made for
   * a container whose record, naming it (its id, its image volumes), is already durable, and
   * whose rollback or removal deletes the key's dir whether or not start-up loaded it. So after a
   * power cut the dir may be missing, or there without its record (not loaded; removed with its
   * container), but its record is never torn: its content is synced before the renames.
   */
  private async createActive(rec: ActiveSnapshot, publishAfter: Promise<unknown> | undefined, populate: (tmp: string) => Promise<void>): Promise<void> {
    const { key, chainId } = rec;
    checkKey(key);
    if (this.active.has(key)) throw new AlreadyExistsError(`active snapshot ${key} already exists`);
    if (chainId !== undefined) this.lowerDirs(chainId); // NotFound before touching disk
    this.active.set(key, rec);
    const tmp = join(this.activeDir, `.tmp-${key}-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(tmp, { mode: 0o700 });
      // The dirs and the record side by side: the record's write is a sync.
      await allOrFirstError([populate(tmp), activeRecord(tmp).write(rec, { syncDir: false })]);
      await publishAfter;
      await rename(tmp, join(this.activeDir, key));
      this.madeHere.add(key);
    } catch (err) {
      this.active.delete(key);
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Mount view `key` read-only (nosuid, nodev, noexec) on `target`, a directory that exists.
   * With `idmap` (a volume of a user-namespaced pod) the layers are seen through the pod's id
   * mapping, as its rootfs is: the image's uid 1234 is the pod's 1234, its root the pod's root.
   */
  async mountView(key: string, target: string, idmap?: Pick<IdmappedRootfs, 'usernsPath'>): Promise<void> {
    const rec = this.active.get(key);
    if (!rec?.view) throw new NotFoundError(`read-only view snapshot ${key} does not exist`);
    const base = join(this.activeDir, key);
    const lowerdirs = rec.chainId !== undefined ? this.lowerDirs(rec.chainId) : [];
    if (lowerdirs.length < 2) lowerdirs.push(join(base, 'pad0'));
    if (lowerdirs.length < 2) lowerdirs.push(join(base, 'pad1'));
    this.mountedOn(key, target);
    if (idmap) await mountIdmappedLayers(lowerdirs, target, idmap.usernsPath);
    else await mountReadOnlyOverlay(lowerdirs, target, this.dir);
  }

  /** The overlay layout of active snapshot `key`. */
  mounts(key: string): PreparedSnapshot {
    const rec = this.active.get(key);
    if (!rec || rec.view) throw new NotFoundError(`active snapshot ${key} does not exist`);
    const base = join(this.activeDir, key);
    const dirs = {
      lowerdirs: rec.chainId !== undefined ? this.lowerDirs(rec.chainId) : [join(base, 'empty')],
      upperdir: join(base, 'fs'),
      workdir: join(base, 'work'),
    };
    return { key, ...dirs, mountOptions: overlayOptions(dirs) };
  }

  /**
   * Mount active snapshot `key` on `target` (created if missing). With `idmap`, the layers are
   * seen through the pod's id mapping and the (still empty) upper dir is given to the pod's
   * root, whose the overlay's root directory then is: nothing of the layers is copied or chowned.
   */
  /**
   * Mount active snapshot `key` on `target`: through `idmap` for a user-namespaced pod, and with
   * every file labelled `mountLabel` on an SELinux node (overlay-mount.ts).
   */
  async mount(key: string, target: string, opts: { idmap?: IdmappedRootfs; mountLabel?: string } = {}): Promise<void> {
    const m = this.mounts(key);
    await mkdir(target, { recursive: true });
    this.mountedOn(key, target);
    if (opts.idmap) {
      await chown(m.upperdir, opts.idmap.rootUid, opts.idmap.rootGid);
      await mountIdmappedOverlay(m, target, opts.idmap.usernsPath, opts.mountLabel);
    } else {
      await mountOverlay(m, target, this.dir, opts.mountLabel);
    }
  }

  async unmount(target: string): Promise<void> {
    await unmountOverlay(target);
    for (const [key, targets] of this.mountedAt) {
      const at = targets.lastIndexOf(target);
      if (at < 0) continue;
      targets.splice(at, 1);
      if (targets.length === 0) this.mountedAt.delete(key);
      break;
    }
  }

  /** Recorded before the mount is tried: one that fails may still have mounted (`mount` run as a
   * process, for a deep chain, can fail after mounting), and a removal asks the kernel anyway. */
  private mountedOn(key: string, target: string): void {
    const targets = this.mountedAt.get(key);
    if (targets) targets.push(target);
    else this.mountedAt.set(key, [target]);
  }

  /** Where active snapshot `key` is still mounted in our mount namespace, if it is. */
  private async mountedWhere(key: string): Promise<string | undefined> {
    if (this.madeHere.has(key)) {
      const target = this.mountedAt.get(key)?.find(isMountPoint);
      return target === undefined ? undefined : `on ${target}`;
    }
    // Deep chains are mounted with paths relative to the snapshot root (see overlay-mount.ts).
    const upper = join(this.activeDir, key, 'fs');
    return (await isUpperMounted([upper, join('active', key, 'fs')])) ? `an overlay with upper dir ${upper}` : undefined;
  }

  /** Remove active snapshot `key` (unmount it first). Missing keys are fine. */
  async remove(key: string): Promise<void> {
    checkKey(key);
    const mounted = await this.mountedWhere(key);
    if (mounted !== undefined) {
      throw new FailedPreconditionError(`active snapshot ${key} is still mounted (${mounted}); unmount it before removing it`);
    }
    // Out of sight in one rename (synced), its files deleted in the background: the unlinks of
    // a container's upper dir took a removal tens of milliseconds.
    await this.trash.discard(join(this.activeDir, key));
    this.active.delete(key);
    this.madeHere.delete(key);
    this.mountedAt.delete(key);
  }

  /** Remove committed snapshot `chainId`; refused while a child or an active snapshot uses it. */
  async removeCommitted(chainId: string): Promise<void> {
    const rec = this.committed.get(chainId);
    if (!rec) throw new NotFoundError(`snapshot ${chainId} is not committed`);
    const child = [...this.committed.values()].find((s) => s.parent === chainId)?.chainId ??
      [...this.inflightParents].find(([, p]) => p === chainId)?.[0];
    if (child) throw new FailedPreconditionError(`snapshot ${chainId} is the parent of ${child}`);
    for (const a of this.active.values()) {
      if (a.chainId !== undefined && this.ancestry(a.chainId).includes(chainId)) {
        throw new FailedPreconditionError(`snapshot ${chainId} is in use by active snapshot ${a.key}`);
      }
    }
    await this.forget(rec);
  }

  /**
   * Out of sight in a synced rename (a power cut never brings back a half-deleted layer whose
   * record looks whole); its files are deleted in the background.
   */
  private async forget(rec: CommittedSnapshot): Promise<void> {
    await this.trash.discard(this.fsDir(rec, ''));
    this.committed.delete(rec.chainId);
    this.lost.delete(rec.chainId);
    this.usageCache.delete(rec.chainId);
  }

  /**
   * Remove every committed snapshot that neither `keep` (and their ancestors) nor an active
   * snapshot needs. Returns the chain IDs removed.
   */
  async gc(keep: Iterable<string>): Promise<string[]> {
    const live = new Set<string>();
    const roots = [...keep, ...[...this.active.values()].flatMap((a) => (a.chainId ? [a.chainId] : []))];
    roots.push(...this.inflightParents.values());
    for (const r of roots) for (const c of this.ancestry(r)) live.add(c);
    const dead = [...this.committed.values()].filter((s) => !live.has(s.chainId));
    // Deepest first, so no snapshot is removed before its children.
    dead.sort((a, b) => this.ancestry(b.chainId).length - this.ancestry(a.chainId).length);
    const removed: string[] = [];
    // Each one's files deleted after RemoveImage answered: the unlinks of an unpacked layer
    // were most of that call.
    for (const s of dead) {
      await this.forget(s);
      removed.push(s.chainId);
    }
    if (removed.length > 0) log.info({ removed: removed.length }, 'snapshot gc');
    return removed;
  }

  /**
   * The flush of the layers a pull is about to commit: open it before the pull writes into the
   * snapshot root, flush it before anything points at them, close it when the pull ends.
   */
  openFlush(): Promise<SnapshotFlush> {
    return SnapshotFlush.open(this.dir, this.flushes, this.vouching, this.opts.syncfs);
  }

  private readonly vouching: LayerVouching = {
    vouched: (chainIds) => {
      for (const c of chainIds) {
        this.unvouched.get(c)?.settle();
        this.unvouched.delete(c);
      }
    },
    lost: (chainIds) => {
      for (const c of chainIds) {
        if (this.committed.has(c)) this.lost.add(c);
        this.unvouched.get(c)?.settle(lostLayer(c));
        this.unvouched.delete(c);
      }
      if (chainIds.length > 0) log.warn({ layers: chainIds }, 'a flush failed: these layers will be unpacked again before any image uses them');
    },
    vouchedFor: (chainId) =>
      this.unvouched.get(chainId)?.settled ?? (this.lost.has(chainId) ? Promise.reject(lostLayer(chainId)) : Promise.resolve()),
  };

  /** Disk usage of the active snapshots (the containers' writable layers), their trash included. */
  activeUsage(): Promise<DiskUsage> {
    return diskUsage(this.activeDir);
  }

  /**
   * Disk usage of every snapshot, committed and active. `active`: what activeUsage() has just
   * found, when the caller needs that figure too (ImageFsInfo): one walk of every writable layer,
   * not two.
   */
  async usage(active?: DiskUsage): Promise<DiskUsage> {
    const walked = active ?? (await this.activeUsage());
    const total = { bytes: walked.bytes, inodes: walked.inodes };
    const self = await lstat(this.dir);
    total.inodes += 1;
    total.bytes += self.blocks * 512;
    for (const rec of [...this.committed.values()]) {
      const u = await this.layerUsage(rec.chainId, this.fsDir(rec, ''));
      total.bytes += u.bytes;
      total.inodes += u.inodes;
    }
    return total;
  }

  private async layerUsage(chainId: string, dir: string): Promise<DiskUsage> {
    const cached = this.usageCache.get(chainId);
    if (cached) return cached;
    const u = await diskUsage(dir);
    // Only cache once committed: a walk of the temp dir at commit time is close but the record
    // file is not in it yet, and a snapshot removed meanwhile must not be resurrected.
    if (this.committed.has(chainId)) this.usageCache.set(chainId, u);
    return u;
  }

  private ancestry(chainId: string): string[] {
    const out: string[] = [];
    for (let cur: string | undefined = chainId; cur !== undefined; cur = this.committed.get(cur)?.parent) {
      out.push(cur);
      if (!this.committed.has(cur)) break;
    }
    return out;
  }

  private fsDir(rec: CommittedSnapshot, sub = 'fs'): string {
    return sub ? join(this.dir, String(rec.id), sub) : join(this.dir, String(rec.id));
  }

  /** Resolves once the removed snapshots' background deletions begun so far have ended. */
  async settled(): Promise<void> {
    await this.trash.settled();
  }
}

/** Whether an overlay in our mount namespace uses one of `uppers` as its upper dir. */
async function isUpperMounted(uppers: string[]): Promise<boolean> {
  return usesUpperDir(await readFile('/proc/self/mountinfo', 'utf8'), uppers);
}

/**
 * Whether a mountinfo text has an overlay whose upper dir is one of `uppers`. The text is
 * searched for them before it is split: a removal's upper dir is usually unmounted already, and
 * splitting every line and every overlay's options (long lowerdir lists) on a node with 200
 * containers mounted was 0.4 ms of CPU and most of a removal's garbage, for each removal; the
 * search is 0.09 ms (measured on a 170 KB mountinfo of 200 overlays).
 */
export function usesUpperDir(info: string, uppers: string[]): boolean {
  const wanted = uppers.map((u) => `upperdir=${u}`);
  if (!wanted.some((w) => info.includes(w))) return false;
  const exact = new Set(wanted);
  // Super options are the last field: "... - overlay overlay rw,lowerdir=...,upperdir=<path>,...".
  return info.split('\n').some((line) => line.includes(' - overlay ') &&
    line.slice(line.lastIndexOf(' ') + 1).split(',').some((o) => exact.has(o)));
}

function checkKey(key: string): void {
  if (!KEY_RE.test(key)) {
    throw new InvalidArgumentError(`snapshot key ${JSON.stringify(key)} must be 1-128 characters of [A-Za-z0-9_.-], not starting with '.', '-' or '_'`);
  }
}

function lostLayer(chainId: string): UnavailableError {
  return new UnavailableError(`snapshot ${chainId} may have lost data: the flush of the snapshot filesystem after its unpack failed; pull the image again`);
}
