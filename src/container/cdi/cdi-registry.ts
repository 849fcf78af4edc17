// The CDI spec files of the node, read from the configured directories and resolved by device
// name. Following the CDI rules: a directory later in the list overrides an earlier one (so
// /var/run/cdi, written by drivers at boot, wins over /etc/cdi); two files of one directory
// defining the same device conflict, and that device cannot be used until one goes. A broken
// file is logged and remembered, never fatal: the other files' devices stay usable, and a
// request for a device that is not found names the broken files that may have held it.
//
// A spec's hooks run as root on the host and its mounts and devices reach into containers, so
// a spec counts only if no one but root (or the daemon's own user) could have written it: a file
// or directory owned by another user, or writable by group or others, is refused and logged.
//
// Files are re-read when they change: each resolution lists the directories and stats the files
// (a few syscalls for the handful of files a node has), parsing only those whose identity
// (inode, size, mtime) moved. No watcher to lose events or leak.
import { lstat, open, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { InvalidArgumentError, NotFoundError, errnoCode } from '../../errors.js';
import type { ContainerConfig__Output } from '../../gen/runtime/v1/ContainerConfig.js';
import { log } from '../../log.js';
import { parseQualifiedName } from './cdi-names.js';
import { requestedCdiDevices } from './cdi-requests.js';
import type { CdiContainerEdits, CdiSpec } from './cdi-spec.js';

/** A spec file larger than this is refused (vendor specs are a few KiB; NVIDIA's big ones ~100 KiB). */
export const MAX_SPEC_FILE_BYTES = 4 * 1024 * 1024;
/** At most this many spec files per directory are read; more are logged and skipped. */
export const MAX_SPEC_FILES_PER_DIR = 1024;

const EXTENSIONS: Record<string, 'json' | 'yaml'> = { '.json': 'json', '.yaml': 'yaml' };

/** Why a file or directory with this owner and mode could have been written by someone else. */
function writableByOthers(st: { uid: number; mode: number }): string | undefined {
  const me = process.geteuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== me) return `owned by uid ${st.uid}, not root`;
  if (st.mode & 0o022) return `writable by ${st.mode & 0o020 ? 'group' : 'others'} (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

interface LoadedFile {
  identity: string;
  spec?: CdiSpec;
  error?: string;
}

/** A device resolved: its edits and its spec's, applied in the order requested. */
export interface ResolvedDevice {
  name: string;
  specPath: string;
  /** The spec-level edits of this device's spec (applied once per spec however many of its devices are asked for). */
  specEdits?: CdiContainerEdits;
  edits: CdiContainerEdits;
}

/** Why a CDI request cannot be resolved; `missing` says whether it names no device at all (NOT_FOUND). */
export class CdiResolveError extends Error {
  constructor(message: string, readonly missing: boolean) {
    super(message);
  }
}

interface Entry {
  path: string;
  priority: number;
  spec: CdiSpec;
  device: CdiSpec['devices'][number];
}

export class CdiRegistry {
  private readonly files = new Map<string, LoadedFile>();

  constructor(private readonly dirs: readonly string[]) {}

  /** Brings the cache up to date with the directories; returns the files in priority order. */
  private async refresh(): Promise<{ path: string; priority: number; file: LoadedFile }[]> {
    const out: { path: string; priority: number; file: LoadedFile }[] = [];
    const present = new Set<string>();
    for (const [priority, dir] of this.dirs.entries()) {
      let names: string[];
      try {
        const unsafe = writableByOthers(await stat(dir));
        if (unsafe) {
          log.warn({ dir, why: unsafe }, 'CDI spec directory ignored: others could write specs into it');
          continue;
        }
        names = (await readdir(dir)).filter((n) => EXTENSIONS[extname(n)] !== undefined).sort();
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') log.warn({ dir, err: (err as Error).message }, 'CDI spec directory unreadable');
        continue;
      }
      if (names.length > MAX_SPEC_FILES_PER_DIR) {
        log.warn({ dir, files: names.length, limit: MAX_SPEC_FILES_PER_DIR }, 'too many CDI spec files; only the first are read');
        names = names.slice(0, MAX_SPEC_FILES_PER_DIR);
      }
      for (const name of names) {
        const path = join(dir, name);
        const file = await this.load(path, EXTENSIONS[extname(name)]!);
        if (!file) continue;
        present.add(path);
        out.push({ path, priority, file });
      }
    }
    for (const path of this.files.keys()) if (!present.has(path)) this.files.delete(path);
    return out;
  }

  /** The file, re-parsed if it changed; undefined when it vanished or is no regular file. */
  private async load(path: string, format: 'json' | 'yaml'): Promise<LoadedFile | undefined> {
    let st;
    try {
      st = await lstat(path);
    } catch {
      return undefined;
    }
    if (!st.isFile()) {
      // Symlinks are not followed: a spec is a file the vendor's tool wrote in the directory.
      return this.remember(path, `${st.ino}:symlink-or-special`, () => ({ error: 'not a regular file (symlinks are not followed)' }));
    }
    const identity = `${st.ino}:${st.size}:${st.mtimeMs}:${st.uid}:${st.mode}`;
    const cached = this.files.get(path);
    if (cached?.identity === identity) return cached;
    const unsafe = writableByOthers(st);
    if (unsafe) return this.remember(path, identity, () => ({ error: `${unsafe}: a spec only root may write is trusted` }));
    if (st.size > MAX_SPEC_FILE_BYTES) {
      return this.remember(path, identity, () => ({ error: `${st.size} bytes, more than the ${MAX_SPEC_FILE_BYTES} a CDI spec may have` }));
    }
    let text: string;
    try {
      const fh = await open(path, 'r');
      try {
        const buf = Buffer.alloc(MAX_SPEC_FILE_BYTES + 1);
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        if (bytesRead > MAX_SPEC_FILE_BYTES) throw new Error(`grew past the ${MAX_SPEC_FILE_BYTES} bytes a CDI spec may have`);
        text = buf.subarray(0, bytesRead).toString('utf8');
      } finally {
        await fh.close();
      }
    } catch (err) {
      return this.remember(path, identity, () => ({ error: (err as Error).message }));
    }
    // The parser (and zod with it) loads with the first spec file: most nodes have none.
    const { parseCdiSpec } = await import('./cdi-spec.js');
    return this.remember(path, identity, () => {
      try {
        return { spec: parseCdiSpec(text, format) };
      } catch (err) {
        return { error: (err as Error).message };
      }
    });
  }

  private remember(path: string, identity: string, make: () => Omit<LoadedFile, 'identity'>): LoadedFile {
    const cached = this.files.get(path);
    if (cached?.identity === identity) return cached;
    const file = { identity, ...make() };
    if (file.error) log.warn({ path, err: file.error }, 'CDI spec file ignored');
    this.files.set(path, file);
    return file;
  }

  /**
   * Resolves fully-qualified device names (duplicates dropped, order kept). Throws a
   * CdiResolveError naming the first device that cannot be used and why.
   */
  async resolve(requested: readonly string[]): Promise<ResolvedDevice[]> {
    const wanted = [...new Set(requested)];
    if (wanted.length === 0) return [];
    for (const fq of wanted) {
      try {
        parseQualifiedName(fq);
      } catch (err) {
        throw new CdiResolveError((err as Error).message, false);
      }
    }
    const files = await this.refresh();
    const byName = new Map<string, Entry[]>();
    for (const { path, priority, file } of files) {
      if (!file.spec) continue;
      for (const device of file.spec.devices) {
        const fq = `${file.spec.kind}=${device.name}`;
        const list = byName.get(fq) ?? [];
        list.push({ path, priority, spec: file.spec, device });
        byName.set(fq, list);
      }
    }
    const out: ResolvedDevice[] = [];
    const specsApplied = new Set<string>();
    for (const fq of wanted) {
      const entries = byName.get(fq);
      if (!entries) {
        const broken = files.filter((f) => f.file.error).map((f) => `${f.path} (${f.file.error})`);
        throw new CdiResolveError(
          `CDI device "${fq}" is not defined by any spec in ${this.dirs.join(', ')}` +
            (broken.length > 0 ? `; spec files that could not be read: ${broken.join('; ')}` : ''),
          true,
        );
      }
      const top = Math.max(...entries.map((e) => e.priority));
      const winners = entries.filter((e) => e.priority === top);
      if (winners.length > 1) {
        throw new CdiResolveError(`CDI device "${fq}" is defined by several specs of one directory (${winners.map((e) => e.path).join(', ')}); remove all but one`, false);
      }
      const { path, spec, device } = winners[0]!;
      const edits = [spec.containerEdits, device.containerEdits];
      const unsupported = edits.find((e) => e?.intelRdt !== undefined) ? 'intelRdt' : edits.find((e) => e?.netDevices !== undefined) ? 'netDevices' : undefined;
      if (unsupported) throw new CdiResolveError(`CDI device "${fq}" (${path}) needs ${unsupported} edits, which crib cannot apply`, false);
      out.push({ name: fq, specPath: path, specEdits: specsApplied.has(path) ? undefined : spec.containerEdits, edits: device.containerEdits });
      specsApplied.add(path);
    }
    return out;
  }

  /** The CDI devices a CreateContainer asks for, resolved; NOT_FOUND or INVALID_ARGUMENT naming the device. */
  async resolveFor(config: Pick<ContainerConfig__Output, 'CDIDevices' | 'annotations'>): Promise<ResolvedDevice[]> {
    try {
      return await this.resolve(requestedCdiDevices(config));
    } catch (err) {
      if (!(err instanceof CdiResolveError)) throw err;
      const msg = `CreateContainer: ${err.message}`;
      throw err.missing ? new NotFoundError(msg) : new InvalidArgumentError(msg);
    }
  }
}
