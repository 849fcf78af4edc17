// Reading image archives for `crib image import` (air-gapped nodes): an OCI image layout tar
// (index.json + blobs/sha256/...) or a `docker save` tar (manifest.json + <config>.json +
// layer tars). The archive is unpacked into a private temp dir (regular files only, names
// confined), then described as image sources the ingest path treats exactly like a pull.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type TarStream from 'tar-stream';
import { CribError, InvalidArgumentError, NotFoundError, errnoCode } from '../errors.js';
import { formatLimit, limitExceeded, type ImageLimits } from './limits.js';
import { parseReference } from './reference.js';
import { hostPlatform, selectManifest } from './registry/platform.js';
import { sha256Digest } from '../digest/digest.js';
import { checkManifestCounts, parseManifest } from './registry/manifest.js';
import { MediaType, type Descriptor } from './registry/types.js';
import { cleanEntryPath } from './unpack/safe-path.js';
import { lazyModule } from '../sys/lazy-module.js';

/** Loaded on first use (sys/lazy-module.ts). */
const tarStream = lazyModule<typeof TarStream>('tar-stream');

export interface ArchiveImage {
  configDescriptor: Descriptor;
  layers: Descriptor[];
  manifestDigest: string;
  manifestBytes: Buffer;
  repoTags: string[];
  repoDigests: string[];
}

export interface ImageArchive {
  images: ArchiveImage[];
  openBlob(desc: Descriptor): Promise<Readable>;
  close(): Promise<void>;
}

async function extractRegularFiles(archive: string, dir: string): Promise<void> {
  const extract = tarStream().extract();
  extract.on('entry', (header, stream, next) => {
    const run = async () => {
      const rel = cleanEntryPath(header.name, 'archive entry');
      if (header.type === 'file' && rel !== '') {
        const target = join(dir, rel);
        await mkdir(join(target, '..'), { recursive: true });
        await pipeline(stream, createWriteStream(target, { flags: 'wx' }));
      } else {
        await new Promise<void>((resolve) => {
          stream.once('end', () => resolve());
          stream.resume();
        });
      }
    };
    run().then(() => next(), (err: unknown) => next(err as Error));
  });
  await pipeline(createReadStream(archive), extract);
}

async function fileDigest(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** Tags as the archive names them, normalised ("busybox:1" → "docker.io/library/busybox:1"). */
function normaliseTag(name: string): string | undefined {
  try {
    const ref = parseReference(name);
    return ref.digest ? undefined : `${ref.name}:${ref.tag ?? 'latest'}`;
  } catch {
    return undefined;
  }
}

type ArchiveLimits = Pick<ImageLimits, 'maxManifestBytes' | 'maxIndexManifests' | 'maxLayers'>;

/** The file's bytes, refusing one larger than the manifest limit before reading it. */
async function readSmallFile(path: string, what: string, limits: ArchiveLimits): Promise<Buffer> {
  const { size } = await stat(path);
  if (size > limits.maxManifestBytes) {
    throw limitExceeded('maxManifestBytes', limits.maxManifestBytes, `image archive: ${what} is ${formatLimit('maxManifestBytes', size)}`);
  }
  return readFile(path);
}

async function readJsonFile<T>(path: string, what: string, limits: ArchiveLimits): Promise<T> {
  const bytes = await readSmallFile(path, what, limits).catch((err: unknown) => {
    if (err instanceof CribError) throw err;
    throw new InvalidArgumentError(`image archive: cannot read ${what}: ${(err as Error).message}`);
  });
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new InvalidArgumentError(`image archive: cannot read ${what}: ${(err as Error).message}`);
  }
}

async function readOciLayout(dir: string, limits: ArchiveLimits): Promise<{ images: ArchiveImage[]; blobPath: (d: string) => string }> {
  const blobPath = (digest: string) => join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
  const readBlob = async (desc: Descriptor) => {
    if (!/^sha256:[0-9a-f]{64}$/.test(desc.digest)) throw new InvalidArgumentError(`image archive: bad digest ${desc.digest}`);
    const bytes = await readSmallFile(blobPath(desc.digest), `blob ${desc.digest}`, limits).catch((err: unknown) => {
      if (err instanceof CribError) throw err;
      throw new InvalidArgumentError(`image archive: blob ${desc.digest} named in the index is missing`);
    });
    if (sha256Digest(bytes) !== desc.digest) throw new InvalidArgumentError(`image archive: blob ${desc.digest} does not match its digest`);
    return bytes;
  };
  const index = await readJsonFile<{ manifests?: Descriptor[] }>(join(dir, 'index.json'), 'index.json', limits);
  const images: ArchiveImage[] = [];
  for (const top of index.manifests ?? []) {
    const name = top.annotations?.['io.containerd.image.name'] ?? top.annotations?.['org.opencontainers.image.ref.name'];
    let desc = top;
    let bytes = await readBlob(desc);
    let parsed = parseManifest(bytes, desc.mediaType, name ?? desc.digest);
    checkManifestCounts(parsed, limits, name ?? desc.digest);
    if (parsed.kind === 'index') {
      desc = selectManifest(parsed.index.manifests, hostPlatform(), name ?? top.digest);
      bytes = await readBlob(desc);
      parsed = parseManifest(bytes, desc.mediaType, name ?? desc.digest);
      checkManifestCounts(parsed, limits, name ?? desc.digest);
    }
    if (parsed.kind !== 'manifest') throw new InvalidArgumentError(`image archive: ${desc.digest} is not an image manifest`);
    const tag = name ? normaliseTag(name) : undefined;
    images.push({
      configDescriptor: parsed.manifest.config,
      layers: parsed.manifest.layers,
      manifestDigest: desc.digest,
      manifestBytes: bytes,
      repoTags: tag ? [tag] : [],
      repoDigests: tag ? [`${tag.slice(0, tag.lastIndexOf(':'))}@${top.digest}`] : [],
    });
  }
  return { images, blobPath };
}

interface DockerSaveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function readDockerSave(dir: string, limits: ArchiveLimits): Promise<{ images: ArchiveImage[]; paths: Map<string, string> }> {
  const entries = await readJsonFile<DockerSaveEntry[]>(join(dir, 'manifest.json'), 'manifest.json', limits);
  if (!Array.isArray(entries)) throw new InvalidArgumentError('image archive: manifest.json is not a list');
  const paths = new Map<string, string>();
  const describe = async (rel: string, mediaType: string): Promise<Descriptor> => {
    const path = join(dir, cleanEntryPath(rel, 'manifest.json path'));
    const { digest, size } = await fileDigest(path).catch((err: unknown) => {
      throw new InvalidArgumentError(`image archive: ${rel} named in manifest.json is missing (${errnoCode(err) ?? err})`);
    });
    paths.set(digest, path);
    return { mediaType, digest, size };
  };
  const images: ArchiveImage[] = [];
  for (const e of entries) {
    if (!Array.isArray(e?.Layers)) throw new InvalidArgumentError('image archive: a manifest.json entry has no Layers list');
    if (e.Layers.length > limits.maxLayers) {
      throw limitExceeded('maxLayers', limits.maxLayers, `image archive: image ${e.Config} has ${e.Layers.length} layers`);
    }
    const configDescriptor = await describe(e.Config, MediaType.DockerConfig);
    const layers: Descriptor[] = [];
    // docker save writes uncompressed layer tars; the unpacker detects compression anyway.
    for (const l of e.Layers) layers.push(await describe(l, 'application/vnd.docker.image.rootfs.diff.tar'));
    // docker save carries no manifest: write the schema2 manifest a registry would have served.
    const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: configDescriptor, layers }));
    images.push({
      configDescriptor,
      layers,
      manifestDigest: sha256Digest(manifestBytes),
      manifestBytes,
      repoTags: (e.RepoTags ?? []).map(normaliseTag).filter((t): t is string => t !== undefined),
      repoDigests: [],
    });
  }
  return { images, paths };
}

/** Open an archive; the caller must close() it to remove the temp dir. */
export async function readImageArchive(path: string, tmpParent: string, limits: ArchiveLimits): Promise<ImageArchive> {
  const st = await stat(path).catch(() => {
    throw new NotFoundError(`image archive ${path} does not exist`);
  });
  if (!st.isFile()) throw new InvalidArgumentError(`image archive ${path} is not a regular file`);
  await mkdir(tmpParent, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(tmpParent, 'import-'));
  const close = () => rm(dir, { recursive: true, force: true });
  try {
    await extractRegularFiles(path, dir).catch((err: unknown) => {
      throw err instanceof InvalidArgumentError ? err : new InvalidArgumentError(`image archive ${path} is not a readable tar: ${(err as Error).message}`);
    });
    const isOci = await stat(join(dir, 'index.json')).then(() => true, () => false);
    const isDocker = await stat(join(dir, 'manifest.json')).then(() => true, () => false);
    let images: ArchiveImage[];
    let locate: (digest: string) => string | undefined;
    if (isOci) {
      const oci = await readOciLayout(dir, limits);
      images = oci.images;
      locate = oci.blobPath;
    } else if (isDocker) {
      const docker = await readDockerSave(dir, limits);
      images = docker.images;
      locate = (d) => docker.paths.get(d);
    } else {
      throw new InvalidArgumentError(`image archive ${path} has neither index.json (OCI layout) nor manifest.json (docker save)`);
    }
    if (images.length === 0) throw new InvalidArgumentError(`image archive ${path} holds no images`);
    return {
      images,
      openBlob: async (desc) => {
        const p = locate(desc.digest);
        if (!p) throw new InvalidArgumentError(`image archive: no blob ${desc.digest}`);
        return createReadStream(p);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
