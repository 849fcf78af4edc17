// The checkpoint archive: checkpointctl's container layout, which kubelet's forensic
// checkpointing (KEP-2008) stores and CRI-O and containerd restore from:
//
//   checkpoint/        CRIU's images as the runtime's `checkpoint` wrote them (plus the
//                      runtime's descriptors.json, and crib-runtime's crib-criu.json)
//   config.dump        JSON: {id, name, rootfsImage, rootfsImageRef, rootfsImageName, runtime,
//                      createdTime, checkpointedTime}: which container, and which image its
//                      rootfs is (a restore needs that image present)
//   spec.dump          the container's OCI spec (config.json) as it ran
//   rootfs-diff.tar    its file changes (rootfs-diff.ts)
//   deleted.files      JSON array of the paths it deleted (only when it deleted any)
//
// An uncompressed tar. It is written beside its destination under a temporary name and renamed
// over it once complete (and fsynced): a failure or a timeout leaves nothing at the destination.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type TarStream from 'tar-stream';
import { InvalidArgumentError } from '../../errors.js';
import { lazyModule } from '../../sys/lazy-module.js';
import { unpackLayer } from '../../image/unpack/unpack-layer.js';

const tarStream = lazyModule<typeof TarStream>('tar-stream');

export const CHECKPOINT_DIR = 'checkpoint';
export const CONFIG_DUMP = 'config.dump';
export const SPEC_DUMP = 'spec.dump';
export const ROOTFS_DIFF = 'rootfs-diff.tar';
export const DELETED_FILES = 'deleted.files';

/** config.dump, as checkpointctl, CRI-O and Podman name its fields. */
export interface ConfigDump {
  id: string;
  name: string;
  rootfsImage: string;
  rootfsImageRef: string;
  rootfsImageName: string;
  runtime: string;
  createdTime: string;
  checkpointedTime: string;
}

export interface ArchiveParts {
  /** The directory whose files go under checkpoint/ (flat: CRIU's images are files). */
  imagesDir: string;
  config: ConfigDump;
  /** The OCI spec, as its JSON text. */
  spec: string;
  /** A rootfs-diff.tar already written (rootfs-diff.ts). */
  rootfsDiffTar: string;
  deleted: string[];
}

/** Writes the archive to `location` (replacing a regular file there), atomically. */
export async function writeCheckpointArchive(location: string, parts: ArchiveParts, signal?: AbortSignal): Promise<void> {
  const tmp = join(dirname(location), `.${basename(location)}.tmp-${randomBytes(6).toString('hex')}`);
  const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
  const pack = tarStream().pack();
  const written = pipeline(pack, out);
  // Owned by whoever wrote them (the daemon: root), as the files they were.
  const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const small = (name: string, body: Buffer) => new Promise<void>((resolve, reject) =>
    pack.entry({ name, size: body.length, mode: 0o600, ...owner }, body, (err) => (err ? reject(err) : resolve())));
  const file = async (name: string, path: string) => {
    signal?.throwIfAborted();
    const st = await stat(path);
    await pipeline(createReadStream(path), pack.entry({ name, size: st.size, mode: 0o600, mtime: st.mtime, ...owner }));
  };
  try {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: `${CHECKPOINT_DIR}/`, type: 'directory', mode: 0o700, ...owner }, (err) => (err ? reject(err) : resolve())));
    for (const name of (await readdir(parts.imagesDir)).sort()) {
      const path = join(parts.imagesDir, name);
      if (!(await lstat(path)).isFile()) continue;
      await file(`${CHECKPOINT_DIR}/${name}`, path);
    }
    await small(CONFIG_DUMP, Buffer.from(JSON.stringify(parts.config, null, 2)));
    await small(SPEC_DUMP, Buffer.from(parts.spec));
    await file(ROOTFS_DIFF, parts.rootfsDiffTar);
    if (parts.deleted.length > 0) await small(DELETED_FILES, Buffer.from(JSON.stringify(parts.deleted)));
    signal?.throwIfAborted();
    pack.finalize();
    await written;
    const fh = await open(tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    signal?.throwIfAborted();
    await rename(tmp, location);
  } catch (err) {
    pack.destroy();
    await written.catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Bounds on an archive given to CreateContainer (it may come from another node). */
export const ARCHIVE_LIMITS = { maxBytes: 64 * 1024 ** 3, maxEntries: 1_000_000 };

/** What restore needs of an unpacked archive. */
export interface UnpackedCheckpoint {
  dir: string;
  imagesDir: string;
  config: ConfigDump;
  rootfsDiffTar: string | undefined;
}

/**
 * Unpacks a checkpoint archive (whose config.dump readConfigDump checked) into `dir` with the
 * image layer unpacker: every path checked, sizes bounded. An archive without checkpoint/ is not
 * a container checkpoint: InvalidArgumentError.
 */
export async function unpackCheckpointArchive(archive: string, dir: string, signal?: AbortSignal): Promise<UnpackedCheckpoint> {
  await unpackLayer(archive, dir, { signal, what: `checkpoint archive ${archive}`, ...ARCHIVE_LIMITS });
  let config: ConfigDump;
  try {
    config = JSON.parse(await readFile(join(dir, CONFIG_DUMP), 'utf8')) as ConfigDump;
  } catch (err) {
    throw new InvalidArgumentError(`${archive}: its ${CONFIG_DUMP} cannot be read: ${(err as Error).message}`);
  }
  const imagesDir = join(dir, CHECKPOINT_DIR);
  if (!(await stat(imagesDir).catch(() => undefined))?.isDirectory()) {
    throw new InvalidArgumentError(`${archive} is not a container checkpoint archive: it has no ${CHECKPOINT_DIR}/ directory`);
  }
  const diff = join(dir, ROOTFS_DIFF);
  return { dir, imagesDir, config, rootfsDiffTar: (await stat(diff).catch(() => undefined))?.isFile() ? diff : undefined };
}

/**
 * Whether CreateContainer's image names a checkpoint archive (as CRI-O and containerd accept
 * one): an absolute path to a regular file. Image references never start with "/".
 */
export async function isCheckpointArchivePath(image: string): Promise<boolean> {
  if (!image.startsWith('/')) return false;
  const st = await lstat(image).catch(() => undefined);
  if (!st) throw new InvalidArgumentError(`CreateContainer: image "${image}" is a path (a checkpoint archive?) and does not exist`);
  if (!st.isFile()) throw new InvalidArgumentError(`CreateContainer: image "${image}" is a path but not a regular file (a checkpoint archive must be one)`);
  return true;
}

/** The most config.dump may hold: it is a handful of names and times. */
const MAX_CONFIG_DUMP_BYTES = 1 << 20;

/**
 * config.dump read straight from the archive, before anything is unpacked (so a missing base
 * image is reported without making anything). Reads until the entry is found.
 */
export async function readConfigDump(archive: string, signal?: AbortSignal): Promise<ConfigDump> {
  const extract = tarStream().extract();
  let found: Buffer | undefined;
  let tooBig = false;
  extract.on('entry', (header, stream, next) => {
    const name = header.name.replace(/^\.?\/+/, '');
    if (name !== CONFIG_DUMP || header.type !== 'file') {
      stream.on('end', next);
      stream.resume();
      return;
    }
    if ((header.size ?? 0) > MAX_CONFIG_DUMP_BYTES) {
      tooBig = true;
      extract.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (d: unknown) => chunks.push(d as Buffer));
    stream.on('end', () => {
      found = Buffer.concat(chunks);
      extract.destroy();
    });
  });
  await pipeline(createReadStream(archive), extract, { signal }).catch((err: unknown) => {
    if (found === undefined && !tooBig) {
      throw new InvalidArgumentError(`${archive} is not a readable checkpoint archive (an uncompressed tar): ${(err as Error).message}`);
    }
  });
  if (tooBig) throw new InvalidArgumentError(`${archive}: ${CONFIG_DUMP} is larger than ${MAX_CONFIG_DUMP_BYTES} bytes`);
  if (found === undefined) throw new InvalidArgumentError(`${archive} is not a container checkpoint archive: it has no ${CONFIG_DUMP}`);
  let config: ConfigDump;
  try {
    config = JSON.parse(found.toString('utf8')) as ConfigDump;
  } catch (err) {
    throw new InvalidArgumentError(`${archive}: ${CONFIG_DUMP} does not parse: ${(err as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || (!config.rootfsImageName && !config.rootfsImageRef)) {
    throw new InvalidArgumentError(`${archive}: ${CONFIG_DUMP} names no rootfs image (rootfsImageName, rootfsImageRef)`);
  }
  return config;
}
