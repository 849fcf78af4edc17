// Persisted image records, one JSON file per image (<root>/images/<config hex>.json). The image
// ID is the config digest, as in containerd and Docker. Records are written atomically and
// mutations are serialised, so a tag moving between images is never lost or doubled in memory;
// if a crash splits a tag move across two files, load() gives the tag to the newer record.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError, errnoCode } from '../errors.js';
import { chainIds } from '../digest/chain-id.js';
import { digestHex } from '../digest/digest.js';
import { fsyncDir, isAtomicTemp, readJson, writeJsonAtomic } from '../store/atomic-file.js';
import type { BlobDescriptor } from './content-store.js';

export interface ImageRecord {
  /** The config digest. */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Compressed bytes of all layers plus config (what a pull transfers). */
  size: number;
  configDigest: string;
  manifestDigest: string;
  /** Chain ID of the top layer; undefined for an image without layers. */
  chainId?: string;
  diffIds: string[];
  layers: BlobDescriptor[];
  /** The parsed image config JSON. */
  config: unknown;
  pinned: boolean;
  createdAt: string;
  updatedAt?: string;
}

const HEX_PREFIX_RE = /^(?:sha256:)?([0-9a-f]{12,64})$/;

export class ImageStore {
  readonly dir: string;
  private readonly images = new Map<string, ImageRecord>();
  private readonly byTag = new Map<string, string>();
  private readonly byDigest = new Map<string, string>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(root: string) {
    this.dir = join(root, 'images');
  }

  /** Read every record from disk (and drop temp files of interrupted writes). */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.images.clear();
    this.byTag.clear();
    this.byDigest.clear();
    const recs: ImageRecord[] = [];
    for (const name of await readdir(this.dir)) {
      if (isAtomicTemp(name)) {
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      if (!/^[0-9a-f]{64}\.json$/.test(name)) continue;
      const rec = await readJson<ImageRecord>(join(this.dir, name));
      if (rec) recs.push(rec);
    }
    // Oldest first, so the newest claim on a tag wins.
    recs.sort((a, b) => stamp(a).localeCompare(stamp(b)));
    for (const rec of recs) {
      for (const tag of rec.repoTags) {
        const prev = this.byTag.get(tag);
        if (prev) {
          const old = this.images.get(prev)!;
          old.repoTags = old.repoTags.filter((t) => t !== tag);
        }
      }
      this.index(rec);
    }
  }

  list(): ImageRecord[] {
    return [...this.images.values()];
  }

  get(id: string): ImageRecord | undefined {
    return this.images.get(id);
  }

  /**
   * The image `ref` names: a full ID (with or without "sha256:"), a unique ID prefix of at
   * least 12 hex digits, a repo tag or a repo digest (both as normalised references).
   */
  resolve(ref: string): ImageRecord | undefined {
    const tagged = this.byTag.get(ref) ?? this.byDigest.get(ref);
    if (tagged) return this.images.get(tagged);
    const m = HEX_PREFIX_RE.exec(ref);
    if (!m) return undefined;
    const prefix = `sha256:${m[1]}`;
    const exact = this.images.get(prefix);
    if (exact) return exact;
    const hits = [...this.images.keys()].filter((id) => id.startsWith(prefix));
    if (hits.length > 1) {
      throw new InvalidArgumentError(`image ID prefix ${ref} is ambiguous: it matches ${hits.length} images`);
    }
    return hits.length === 1 ? this.images.get(hits[0]!) : undefined;
  }

  /**
   * Store `rec` (replacing any record with its ID, merging nothing). Its tags move to it from
   * any other image that had them.
   */
  async put(rec: ImageRecord): Promise<void> {
    digestHex(rec.id);
    await this.serial(async () => {
      const next: ImageRecord = { ...rec, repoTags: unique(rec.repoTags), repoDigests: unique(rec.repoDigests),
        updatedAt: new Date().toISOString() };
      await this.write(next);
      const old = this.images.get(next.id);
      if (old) this.unindex(old);
      this.index(next);
      await this.releaseTags(next);
    });
  }

  /** Point `tag` at image `id`, taking it from whichever image had it. */
  async addTag(id: string, tag: string): Promise<void> {
    await this.serial(async () => {
      const rec = this.mustGet(id);
      if (rec.repoTags.includes(tag)) return;
      const next = { ...rec, repoTags: [...rec.repoTags, tag], updatedAt: new Date().toISOString() };
      await this.write(next);
      this.unindex(rec);
      this.index(next);
      await this.releaseTags(next);
    });
  }

  /** Drop `tag` from whichever image has it; false when no image had it. */
  async removeTag(tag: string): Promise<boolean> {
    return this.serial(async () => {
      const id = this.byTag.get(tag);
      if (!id) return false;
      const rec = this.images.get(id)!;
      const next = { ...rec, repoTags: rec.repoTags.filter((t) => t !== tag), updatedAt: new Date().toISOString() };
      await this.write(next);
      this.unindex(rec);
      this.index(next);
      return true;
    });
  }

  /** Delete image `id`'s record; returns it, or undefined when there was none. */
  async remove(id: string): Promise<ImageRecord | undefined> {
    return this.serial(async () => {
      const rec = this.images.get(id);
      if (!rec) return undefined;
      try {
        await rm(this.file(id));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
      await fsyncDir(this.dir);
      this.unindex(rec);
      this.images.delete(id);
      return rec;
    });
  }

  async setPinned(id: string, pinned: boolean): Promise<void> {
    await this.serial(async () => {
      const rec = this.mustGet(id);
      const next = { ...rec, pinned, updatedAt: new Date().toISOString() };
      await this.write(next);
      this.images.set(id, next);
    });
  }

  /** Every blob digest some image needs (manifests, configs, layers): GC keeps these. */
  referencedDigests(): Set<string> {
    const out = new Set<string>();
    for (const r of this.images.values()) {
      out.add(r.manifestDigest);
      out.add(r.configDigest);
      for (const l of r.layers) out.add(l.digest);
    }
    return out;
  }

  /** Every chain ID (each layer prefix) some image needs: snapshot GC keeps these. */
  referencedChainIds(): Set<string> {
    const out = new Set<string>();
    for (const r of this.images.values()) for (const c of chainIds(r.diffIds)) out.add(c);
    return out;
  }

  private mustGet(id: string): ImageRecord {
    const rec = this.images.get(id);
    if (!rec) throw new NotFoundError(`image ${id} not found`);
    return rec;
  }

  private file(id: string): string {
    return join(this.dir, `${digestHex(id)}.json`);
  }

  private async write(rec: ImageRecord): Promise<void> {
    await writeJsonAtomic(this.file(rec.id), rec, 0o600);
  }

  /** Remove `owner`'s tags from every other image, persisting each change. */
  private async releaseTags(owner: ImageRecord): Promise<void> {
    for (const other of [...this.images.values()]) {
      if (other.id === owner.id) continue;
      const kept = other.repoTags.filter((t) => !owner.repoTags.includes(t));
      if (kept.length === other.repoTags.length) continue;
      const next = { ...other, repoTags: kept, updatedAt: new Date().toISOString() };
      await this.write(next);
      this.images.set(other.id, next);
    }
    for (const t of owner.repoTags) this.byTag.set(t, owner.id);
  }

  private index(rec: ImageRecord): void {
    this.images.set(rec.id, rec);
    for (const t of rec.repoTags) this.byTag.set(t, rec.id);
    for (const d of rec.repoDigests) this.byDigest.set(d, rec.id);
  }

  private unindex(rec: ImageRecord): void {
    for (const t of rec.repoTags) if (this.byTag.get(t) === rec.id) this.byTag.delete(t);
    for (const d of rec.repoDigests) if (this.byDigest.get(d) === rec.id) this.byDigest.delete(d);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function stamp(r: ImageRecord): string {
  return r.updatedAt ?? r.createdAt ?? '';
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
