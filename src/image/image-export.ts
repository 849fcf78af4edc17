// Writing one image as an OCI image layout tar (what `crib image export` makes and `crib image
// import`, `ctr import` or skopeo read): oci-layout, index.json naming the image, and the
// manifest, config and layer blobs exactly as the content store holds them (so digests match).
// The file is created new (never over an existing one) and removed again if writing fails.
import { createReadStream, createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type TarStream from 'tar-stream';
import { AlreadyExistsError, InvalidArgumentError, errnoCode } from '../errors.js';
import type { ContentStore } from './content-store.js';
import type { ImageRecord } from './image-store.js';
import { MediaType } from './registry/types.js';
import { lazyModule } from '../sys/lazy-module.js';

/** Loaded on first use (sys/lazy-module.ts). */
const tarStream = lazyModule<typeof TarStream>('tar-stream');

const blobName = (digest: string): string => `blobs/sha256/${digest.replace(/^sha256:/, '')}`;

export async function writeImageLayout(content: ContentStore, rec: ImageRecord, path: string): Promise<void> {
  const manifest = await content.readBytes(rec.manifestDigest);
  const mediaType = (JSON.parse(manifest.toString('utf8')) as { mediaType?: string }).mediaType ?? MediaType.OciManifest;
  const name = rec.repoTags[0];
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [{
      mediaType,
      digest: rec.manifestDigest,
      size: manifest.length,
      ...(name ? { annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name.slice(name.lastIndexOf(':') + 1) } } : {}),
    }],
  };
  let out;
  try {
    out = createWriteStream(path, { flags: 'wx', mode: 0o644 });
    await new Promise<void>((resolve, reject) => {
      out!.once('open', () => resolve());
      out!.once('error', reject);
    });
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') throw new AlreadyExistsError(`${path} already exists: choose a new file name for the archive`);
    throw new InvalidArgumentError(`cannot create ${path}: ${(err as Error).message}`);
  }
  const pack = tarStream().pack();
  const written = pipeline(pack, out);
  try {
    const small = (entryName: string, bytes: Buffer) => new Promise<void>((resolve, reject) =>
      pack.entry({ name: entryName, size: bytes.length, mode: 0o644 }, bytes, (err) => (err ? reject(err) : resolve())));
    await small('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    await small('index.json', Buffer.from(JSON.stringify(index)));
    await small(blobName(rec.manifestDigest), manifest);
    await small(blobName(rec.configDigest), await content.readBytes(rec.configDigest));
    for (const layer of rec.layers) {
      const entry = pack.entry({ name: blobName(layer.digest), size: layer.size, mode: 0o644 });
      await pipeline(createReadStream(content.path(layer.digest)), entry);
    }
    pack.finalize();
    await written;
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw err;
  }
}
