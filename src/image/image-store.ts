// Persisted image records, one JSON file per image (<root>/images/<config hex>.json), kept by a
// RecordStore. The image ID is the config digest, as in containerd and Docker. Mutations are
// serialised, so a tag moving between images is never lost or doubled in memory; if a crash
// splits a tag move across two files, load() gives the tag to the newer record.
import { join } from 'node:path';
import { chainIds } from '../digest/chain-id.js';
import { digestHex } from '../digest/digest.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { SerialQueue } from '../lifecycle/keyed-lock.js';
import { RecordStore } from '../store/record-store.js';
import { defineSchema } from '../store/schema.js';
import type { BlobDescriptor } from './content-store.js';
import { isoTime } from '../time.js';

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

/** The on-disk schema of <root>/images/<hex>.json (see store/schema.ts to change it). */
export const IMAGE_RECORD = defineSchema<ImageRecord>('image record');

const HEX_PREFIX_RE = /^(?:sha256:)?([0-9a-f]{12,64})$/;

export class ImageStore {
  readonly dir: string;
  private readonly records: RecordStore<ImageRecord>;
  private readonly byTag = new Map<string, string>();
  private readonly byDigest = new Map<string, string>();
  private readonly queue = new SerialQueue();

  constructor(root: string) {
    this.dir = join(root, 'images');
    this.records = new RecordStore(this.dir, IMAGE_RECORD, { fileStem: digestHex });
  }

  /** Read every record from disk (and drop temp files of interrupted writes). */
  async load(): Promise<void> {
    this.byTag.clear();
    this.byDigest.clear();
    const recs = await this.records.load();
    // Oldest first, so the newest claim on a tag wins. The stamps are ISO times, which sort as
    // plain strings; localeCompare would load ICU's collator, about 2.6 MiB of the node binary
    // a daemon with images then kept for its whole life.
    recs.sort((a, b) => {
      const [x, y] = [stamp(a), stamp(b)];
      return x < y ? -1 : x > y ? 1 : 0;
    });
    for (const rec of recs) {
      for (const tag of rec.repoTags) {
        const prev = this.byTag.get(tag);
        if (prev) {
          const old = this.records.get(prev)!;
          this.records.keepInMemory({ ...old, repoTags: old.repoTags.filter((t) => t !== tag) });
        }
      }
      this.index(this.records.get(rec.id)!);
    }
  }

  list(): ImageRecord[] {
    return this.records.list();
  }

  get(id: string): ImageRecord | undefined {
    return this.records.get(id);
  }

  /**
   * The image `ref` names: a full ID (with or without "sha256:"), a unique ID prefix of at
   * least 12 hex digits, a repo tag or a repo digest (both as normalised references).
   */
  resolve(ref: string): ImageRecord | undefined {
    const tagged = this.byTag.get(ref) ?? this.byDigest.get(ref);
    if (tagged) return this.records.get(tagged);
    const m = HEX_PREFIX_RE.exec(ref);
    if (!m) return undefined;
    const prefix = `sha256:${m[1]}`;
    const exact = this.records.get(prefix);
    if (exact) return exact;
    const hits = this.records.list().map((r) => r.id).filter((id) => id.startsWith(prefix));
    if (hits.length > 1) {
      throw new InvalidArgumentError(`image ID prefix ${ref} is ambiguous: it matches ${hits.length} images`);
    }
    return hits.length === 1 ? this.records.get(hits[0]!) : undefined;
  }

  /**
   * Store `rec` (replacing any record with its ID, merging nothing). Its tags move to it from
   * any other image that had them.
   */
  async put(rec: ImageRecord): Promise<void> {
    digestHex(rec.id);
    await this.serial(async () => {
      const next: ImageRecord = { ...rec, repoTags: unique(rec.repoTags), repoDigests: unique(rec.repoDigests),
        updatedAt: isoTime() };
      const old = this.records.get(next.id);
      await this.records.put(next);
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
      const next = { ...rec, repoTags: [...rec.repoTags, tag], updatedAt: isoTime() };
      await this.records.put(next);
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
      const rec = this.records.get(id)!;
      const next = { ...rec, repoTags: rec.repoTags.filter((t) => t !== tag), updatedAt: isoTime() };
      await this.records.put(next);
      this.unindex(rec);
      this.index(next);
      return true;
    });
  }

  /** Delete image `id`'s record; returns it, or undefined when there was none. */
  async remove(id: string): Promise<ImageRecord | undefined> {
    return this.serial(async () => {
      const rec = this.records.get(id);
      if (!rec) return undefined;
      await this.records.remove(id);
      this.unindex(rec);
      return rec;
    });
  }

  async setPinned(id: string, pinned: boolean): Promise<void> {
    await this.serial(async () => {
      const rec = this.mustGet(id);
      await this.records.put({ ...rec, pinned, updatedAt: isoTime() });
    });
  }

  /** Every blob digest some image needs (manifests, configs, layers): GC keeps these. */
  referencedDigests(): Set<string> {
    const out = new Set<string>();
    for (const r of this.records.list()) {
      out.add(r.manifestDigest);
      out.add(r.configDigest);
      for (const l of r.layers) out.add(l.digest);
    }
    return out;
  }

  /** Every chain ID (each layer prefix) some image needs: snapshot GC keeps these. */
  referencedChainIds(): Set<string> {
    const out = new Set<string>();
    for (const r of this.records.list()) for (const c of chainIds(r.diffIds)) out.add(c);
    return out;
  }

  private mustGet(id: string): ImageRecord {
    const rec = this.records.get(id);
    if (!rec) throw new NotFoundError(`image ${id} not found`);
    return rec;
  }

  /** Remove `owner`'s tags from every other image, persisting each change. */
  private async releaseTags(owner: ImageRecord): Promise<void> {
    for (const other of this.records.list()) {
      if (other.id === owner.id) continue;
      const kept = other.repoTags.filter((t) => !owner.repoTags.includes(t));
      if (kept.length === other.repoTags.length) continue;
      await this.records.put({ ...other, repoTags: kept, updatedAt: isoTime() });
    }
    for (const t of owner.repoTags) this.byTag.set(t, owner.id);
  }

  private index(rec: ImageRecord): void {
    for (const t of rec.repoTags) this.byTag.set(t, rec.id);
    for (const d of rec.repoDigests) this.byDigest.set(d, rec.id);
  }

  private unindex(rec: ImageRecord): void {
    for (const t of rec.repoTags) if (this.byTag.get(t) === rec.id) this.byTag.delete(t);
    for (const d of rec.repoDigests) if (this.byDigest.get(d) === rec.id) this.byDigest.delete(d);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }
}

function stamp(r: ImageRecord): string {
  return r.updatedAt ?? r.createdAt ?? '';
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
