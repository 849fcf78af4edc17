// The container's /etc/passwd and /etc/group as the user lookup (user.ts) reads them, and a
// bounded cache of them per image. A create's user lookup reads them from the image's layers
// (rootfs-path.ts): per file a walk of sync lstats through the layers, then an open, a stat, the
// read and a close on the thread pool, which CreateContainer's intent write and writable layer
// wait behind. An image's layers never change under its chain id (content-addressed, committed
// once, removed whole), so what they hold is read once per image while the image is kept here.
import { setRecent } from '../../sys/recent-entries.js';
import { type GroupEntry, type PasswdEntry, parseGroup, parsePasswd } from './etc-passwd.js';
import { readRootfsFile } from './rootfs-path.js';

/** The container's /etc/passwd and /etc/group entries, each read once; null: the file is missing. */
export interface EtcFiles {
  users(): Promise<PasswdEntry[] | null>;
  groups(): Promise<GroupEntry[] | null>;
}

/** A file's entries, and the characters its text took (what keeping it costs). */
interface ReadFile<T> {
  entries: T[] | null;
  chars: number;
}

async function readEtcFile<T>(layers: readonly string[], path: string, parse: (text: string) => T[]): Promise<ReadFile<T>> {
  const text = await readRootfsFile(layers, path);
  return text === undefined ? { entries: null, chars: 0 } : { entries: parse(text), chars: text.length };
}

/**
 * Both files of the overlay of `layers` (top first), read from now on side by side (each is a
 * few file system round trips, and most lookups need both: the user's entry, then its groups).
 */
class LayerEtcFiles implements EtcFiles {
  readonly passwd: Promise<ReadFile<PasswdEntry>>;
  readonly group: Promise<ReadFile<GroupEntry>>;
  constructor(layers: readonly string[]) {
    this.passwd = readEtcFile(layers, '/etc/passwd', parsePasswd);
    this.group = readEtcFile(layers, '/etc/group', parseGroup);
    // Awaited only when asked for (users, groups): a failed read no one asks for is no error.
    this.passwd.catch(() => undefined);
    this.group.catch(() => undefined);
  }

  async users(): Promise<PasswdEntry[] | null> {
    return (await this.passwd).entries;
  }

  async groups(): Promise<GroupEntry[] | null> {
    return (await this.group).entries;
  }
}

/** The files of a rootfs that is no image's alone (a checkpoint's diff is in its upper layer). */
export function readEtcFiles(layers: readonly string[]): EtcFiles {
  return new LayerEtcFiles(layers);
}

/** How many images' files are kept: the images a node creates containers of at a time. */
export const ETC_CACHE_IMAGES = 32;
/**
 * The most text (in characters) one image's two files may take and still be kept (a usual image's take a few
 * KiB): the cache stays under a few MiB whatever the images hold; a larger pair is read each time.
 */
export const ETC_CACHE_MAX_CHARS = 64 * 1024;

/**
 * The files of each image, by chain id, the least recently used dropped first. A read that fails
 * is not kept (the next create reads again), nor is one larger than ETC_CACHE_MAX_CHARS. The
 * entries are shared between creates: the user lookup only reads them.
 */
export class ImageEtcFilesCache {
  private readonly byChain = new Map<string, LayerEtcFiles>();

  constructor(private readonly maxImages = ETC_CACHE_IMAGES, private readonly maxChars = ETC_CACHE_MAX_CHARS) {}

  /** The files of the image whose chain id is `chainId` and whose layers (top first) are `layers`. */
  get(chainId: string, layers: readonly string[]): EtcFiles {
    const kept = this.byChain.get(chainId);
    if (kept) {
      setRecent(this.byChain, chainId, kept, this.maxImages);
      return kept;
    }
    const files = new LayerEtcFiles(layers);
    setRecent(this.byChain, chainId, files, this.maxImages);
    const forget = () => {
      if (this.byChain.get(chainId) === files) this.byChain.delete(chainId);
    };
    Promise.all([files.passwd, files.group]).then(([p, g]) => {
      if (p.chars + g.chars > this.maxChars) forget();
    }, forget);
    return files;
  }

  /** How many images' files are kept (for tests). */
  get size(): number {
    return this.byChain.size;
  }
}
