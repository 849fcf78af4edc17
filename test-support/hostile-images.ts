// Crafted images for attacks on the pull path, cheap to build: a layer whose gzip is a few MB but
// whose tar is gigabytes of zeros (a decompression bomb), an image config of any size, a manifest
// of any size. Built as multi-member gzip: one small gzip member of zeros repeated, which every
// gunzip reads as one stream, so a 5 GiB tar costs ~5 MB and no time to make.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { MT, hostImagePlatform, type Blob } from './image-builder.js';
import { encodeTar } from './tar-writer.js';

export interface CraftedLayer {
  mediaType: string;
  digest: string;
  size: number;
  blob: Buffer;
  /** What the config claims as the layer's diff_id (a bomb's real one is never computed). */
  diffId: string;
}

export interface CraftedImage {
  manifest: Blob;
  config: Blob;
  layers: CraftedLayer[];
}

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function blob(mediaType: string, bytes: Buffer): Blob {
  return { mediaType, digest: sha256(bytes), size: bytes.length, bytes };
}

const CHUNK = 16 << 20;
let zeroMember: Buffer | undefined;

/**
 * A gzip layer holding one regular file of `size` zero bytes (a multiple of 16 MiB). Its tar is
 * `size` + 2 KiB; its blob ~1/1000 of that.
 */
export function zeroFileLayer(size: number, name = 'zeros'): CraftedLayer {
  if (size % CHUNK !== 0) throw new Error(`zeroFileLayer: size must be a multiple of ${CHUNK}`);
  zeroMember ??= gzipSync(Buffer.alloc(CHUNK), { level: 9 });
  const tar = encodeTar([{ header: { path: name, type: 'file' }, content: Buffer.alloc(0) }]);
  // The header block of an empty file, with the size field rewritten (and its checksum).
  const header = Buffer.from(tar.subarray(0, 512));
  header.write(size.toString(8).padStart(11, '0') + '\0', 124, 'ascii');
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  const members = [gzipSync(header), ...Array.from({ length: size / CHUNK }, () => zeroMember!), gzipSync(Buffer.alloc(1024))];
  const bytes = Buffer.concat(members);
  return { mediaType: MT.ociLayerGzip, digest: sha256(bytes), size: bytes.length, blob: bytes, diffId: zeroTarDiffId(header, size) };
}

/** The real diff_id up to 256 MiB (cheap to hash); beyond, a placeholder no pull should reach. */
function zeroTarDiffId(header: Buffer, size: number): string {
  if (size > 256 << 20) return sha256(`not computed: ${size} bytes of zeros`);
  const h = createHash('sha256').update(header);
  const zeros = Buffer.alloc(CHUNK);
  for (let done = 0; done < size; done += CHUNK) h.update(zeros);
  return `sha256:${h.update(Buffer.alloc(1024)).digest('hex')}`;
}

/** A small, honest gzip layer with one file. */
export function smallLayer(name: string, content: string): CraftedLayer {
  const tar = encodeTar([{ header: { path: name, type: 'file' }, content: Buffer.from(content) }]);
  const bytes = gzipSync(tar);
  return { mediaType: MT.ociLayerGzip, digest: sha256(bytes), size: bytes.length, blob: bytes, diffId: sha256(tar) };
}

/** Image config JSON for `layers`, padded with a label to at least `padTo` bytes. */
export function configFor(layers: CraftedLayer[], padTo = 0): Buffer {
  const platform = hostImagePlatform();
  const base = { architecture: platform.architecture, os: platform.os, config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } };
  const text = JSON.stringify(base);
  if (text.length >= padTo) return Buffer.from(text);
  const padded = (n: number) => JSON.stringify({ ...base, config: { Labels: { padding: 'x'.repeat(n) } } });
  return Buffer.from(padded(Math.max(0, padTo - padded(0).length)));
}

/** An OCI image of `layers`, with `config` bytes (default: configFor(layers)). */
export function craftImage(layers: CraftedLayer[], config?: Buffer, configSizeClaim?: number): CraftedImage {
  const cfg = blob(MT.ociConfig, config ?? configFor(layers));
  const manifest = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: cfg.mediaType, digest: cfg.digest, size: configSizeClaim ?? cfg.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  return { manifest: blob(MT.ociManifest, Buffer.from(JSON.stringify(manifest))), config: cfg, layers };
}

/** A syntactically valid OCI manifest of at least `size` bytes (padded with an annotation). */
export function hugeManifest(size: number): Buffer {
  const layer = smallLayer('f', 'x');
  const cfg = blob(MT.ociConfig, configFor([layer]));
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: cfg.mediaType, digest: cfg.digest, size: cfg.size },
    layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    annotations: { padding: 'x'.repeat(size) },
  }));
}
