// Builds OCI and Docker images for tests — layers from explicit tar entries or a busybox rootfs,
// config, manifest, multi-platform indexes — and pushes them to a TestRegistry through the
// registry's HTTP API, or writes them as an OCI layout tar or a `docker save` tar.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { TestRegistry } from './registry.js';
import { encodeTar, type TarHeader } from './tar-writer.js';

const gzip = promisify(gzipCb);

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export type Compression = 'gzip' | 'zstd' | 'none';

interface EntryBase {
  path: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  /** Extended attributes (pax SCHILY.xattr.*), e.g. security.capability as raw bytes. */
  xattrs?: Record<string, Buffer | string>;
}

export type TarEntry =
  | (EntryBase & { type: 'file'; content: Buffer | string })
  | (EntryBase & { type: 'dir' })
  | (EntryBase & { type: 'symlink'; target: string })
  | (EntryBase & { type: 'hardlink'; target: string })
  | (EntryBase & { type: 'char' | 'block'; major: number; minor: number })
  | (EntryBase & { type: 'fifo' })
  /** Deletes `path` from lower layers: written as <dir>/.wh.<name>. */
  | { type: 'whiteout'; path: string }
  /** Hides everything below directory `path` in lower layers: written as <path>/.wh..wh..opq. */
  | { type: 'opaque'; path: string };

export interface LayerBlob {
  /** The uncompressed tar. */
  tar: Buffer;
  /** The blob as stored in a registry (compressed per `compression`). */
  blob: Buffer;
  compression: Compression;
  digest: string;
  size: number;
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
}

export function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function hex(digest: string): string {
  return digest.slice('sha256:'.length);
}

function relative(path: string): string {
  return path.replace(/^\/+/, '');
}

/** The tar headers and contents for entries (whiteouts expanded to their marker files). */
export function tarFromEntries(entries: TarEntry[]): Buffer {
  const out: { header: TarHeader; content?: Buffer }[] = [];
  for (const e of entries) {
    if (e.type === 'whiteout') {
      const p = relative(e.path);
      const slash = p.lastIndexOf('/');
      out.push({ header: { path: `${p.slice(0, slash + 1)}.wh.${p.slice(slash + 1)}`, type: 'file', mode: 0o644 }, content: Buffer.alloc(0) });
      continue;
    }
    if (e.type === 'opaque') {
      out.push({ header: { path: `${relative(e.path).replace(/\/$/, '')}/.wh..wh..opq`, type: 'file', mode: 0o644 }, content: Buffer.alloc(0) });
      continue;
    }
    const header: TarHeader = {
      path: relative(e.path), type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, xattrs: e.xattrs,
    };
    if (e.type === 'symlink') header.linkname = e.target;
    if (e.type === 'hardlink') header.linkname = relative(e.target);
    if (e.type === 'char' || e.type === 'block') {
      header.devmajor = e.major;
      header.devminor = e.minor;
    }
    const content = e.type === 'file' ? Buffer.from(e.content) : undefined;
    out.push({ header, content });
  }
  return encodeTar(out);
}

async function zstd(input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn('zstd', ['-q', '-c', '-3'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => chunks.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`zstd exited ${code}: ${err}`))));
    p.stdin.end(input);
  });
}

/** Compress a tar into a layer blob. */
export async function layerFromTar(tar: Buffer, compression: Compression = 'gzip'): Promise<LayerBlob> {
  const blob = compression === 'gzip' ? await gzip(tar) : compression === 'zstd' ? await zstd(tar) : tar;
  return { tar, blob, compression, digest: sha256(blob), size: blob.length, diffId: sha256(tar) };
}

export async function layerFromEntries(entries: TarEntry[], compression: Compression = 'gzip'): Promise<LayerBlob> {
  return layerFromTar(tarFromEntries(entries), compression);
}

export const BUSYBOX_APPLETS = [
  'sh', 'ash', 'ls', 'cat', 'echo', 'true', 'false', 'sleep', 'id', 'env', 'printenv', 'httpd', 'nc', 'wget',
  'ps', 'mkdir', 'rm', 'rmdir', 'touch', 'hostname', 'grep', 'head', 'tail', 'top', 'kill', 'mount', 'umount',
  'whoami', 'stat', 'date', 'test', '[', 'wc', 'sed', 'awk', 'chmod', 'chown', 'ln', 'cp', 'mv', 'uname',
  'dd', 'find', 'seq', 'xargs', 'tee', 'yes', 'nslookup', 'ip', 'ping', 'pwd', 'readlink', 'sync', 'df',
  'du', 'free', 'mknod', 'mkfifo', 'timeout', 'usleep', 'tr', 'cut', 'sort', 'uniq', 'vi', 'ifconfig',
  'netstat', 'nproc', 'sha256sum', 'md5sum', 'basename', 'dirname', 'printf', 'expr', 'getopt', 'which',
  'hexdump', 'od', 'xxd', 'setsid', 'nsenter', 'unshare', 'dmesg', 'cmp', 'diff', 'tar', 'gzip', 'gunzip',
];

export const BUSYBOX_USER = { name: 'user', uid: 1000, gid: 1000 } as const;

/**
 * A rootfs layer: /bin/busybox (static) with applet symlinks, /etc/passwd and /etc/group with root,
 * a non-root "user" (1000:1000) and nobody, and the usual empty directories.
 */
export async function busyboxRootfsLayer(opts: { compression?: Compression; extra?: TarEntry[] } = {}): Promise<LayerBlob> {
  const busybox = await readFile('/bin/busybox');
  const mtime = new Date('2024-01-01T00:00:00Z');
  const dir = (path: string, mode = 0o755, uid = 0, gid = 0): TarEntry => ({ type: 'dir', path, mode, uid, gid, mtime });
  const file = (path: string, content: string, mode = 0o644): TarEntry => ({ type: 'file', path, content, mode, mtime });
  const entries: TarEntry[] = [
    dir('bin'), dir('dev'), dir('etc'), dir('proc'), dir('sys'), dir('root', 0o700), dir('tmp', 0o1777),
    dir('var'), dir('var/www'), dir('usr'), dir('usr/bin'), dir('home'), dir('home/user', 0o755, 1000, 1000),
    { type: 'file', path: 'bin/busybox', content: busybox, mode: 0o755, mtime },
    ...BUSYBOX_APPLETS.map((a): TarEntry => ({ type: 'symlink', path: `bin/${a}`, target: '/bin/busybox', mode: 0o777, mtime })),
    { type: 'symlink', path: 'usr/bin/env', target: '/bin/busybox', mode: 0o777, mtime },
    file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n'),
    file('etc/group', 'root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n'),
    file('var/www/index.html', 'hello from crib\n'),
    ...(opts.extra ?? []),
  ];
  return layerFromEntries(entries, opts.compression ?? 'gzip');
}

export interface ImageConfigInput {
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  User?: string;
  WorkingDir?: string;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface ImagePlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

export interface BuiltImage {
  mediaTypes: 'oci' | 'docker';
  platform: ImagePlatform;
  layers: (LayerBlob & { mediaType: string })[];
  config: Blob;
  manifest: Blob;
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' };

export function hostImagePlatform(): ImagePlatform {
  return { os: 'linux', architecture: GOARCH[process.arch] ?? process.arch };
}

function layerMediaType(c: Compression, family: 'oci' | 'docker'): string {
  if (family === 'docker' && c === 'gzip') return MT.dockerLayerGzip;
  return c === 'gzip' ? MT.ociLayerGzip : c === 'zstd' ? MT.ociLayerZstd : MT.ociLayer;
}

function blob(mediaType: string, bytes: Buffer): Blob {
  return { mediaType, digest: sha256(bytes), size: bytes.length, bytes };
}

export function buildImage(opts: {
  layers: LayerBlob[];
  config?: ImageConfigInput;
  mediaTypes?: 'oci' | 'docker';
  platform?: ImagePlatform;
  created?: string;
  annotations?: Record<string, string>;
}): BuiltImage {
  const family = opts.mediaTypes ?? 'oci';
  const platform = opts.platform ?? hostImagePlatform();
  const layers = opts.layers.map((l) => ({ ...l, mediaType: layerMediaType(l.compression, family) }));
  const created = opts.created ?? '2024-01-01T00:00:00Z';
  const configJson = {
    created,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...opts.config },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created, created_by: 'crib test image-builder' })),
  };
  const config = blob(family === 'oci' ? MT.ociConfig : MT.dockerConfig, Buffer.from(JSON.stringify(configJson)));
  const manifestMediaType = family === 'oci' ? MT.ociManifest : MT.dockerManifest;
  const manifestJson = {
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
  return { mediaTypes: family, platform, layers, config, manifest: blob(manifestMediaType, Buffer.from(JSON.stringify(manifestJson, null, 2))) };
}

function check(res: { status: number; body: Buffer }, what: string, ok: number[]): void {
  if (!ok.includes(res.status)) throw new Error(`${what}: registry answered ${res.status}: ${res.body.toString().slice(0, 500)}`);
}

/** Upload a blob unless the registry has it: POST an upload, then PUT the whole body with ?digest. */
export async function pushBlob(registry: TestRegistry, repo: string, digest: string, bytes: Buffer): Promise<void> {
  const head = await registry.request('HEAD', `/v2/${repo}/blobs/${digest}`);
  if (head.status === 200) return;
  const start = await registry.request('POST', `/v2/${repo}/blobs/uploads/`);
  check(start, `starting upload of ${digest} to ${repo}`, [202]);
  const location = new URL(String(start.headers['location']), registry.url);
  location.searchParams.set('digest', digest);
  const put = await registry.request('PUT', location.toString(), {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) }, body: bytes,
  });
  check(put, `uploading ${digest} to ${repo}`, [201]);
}

/** PUT any manifest bytes under a tag or digest (for odd media types such as schema 1). */
export async function pushManifestBytes(registry: TestRegistry, repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<string> {
  const res = await registry.request('PUT', `/v2/${repo}/manifests/${reference}`, { headers: { 'content-type': mediaType }, body: bytes });
  check(res, `pushing manifest ${repo}:${reference}`, [201]);
  return sha256(bytes);
}

/** Push an image's blobs and manifest; returns the manifest digest. */
export async function pushImage(registry: TestRegistry, repo: string, tag: string, image: BuiltImage): Promise<string> {
  for (const l of image.layers) await pushBlob(registry, repo, l.digest, l.blob);
  await pushBlob(registry, repo, image.config.digest, image.config.bytes);
  return pushManifestBytes(registry, repo, tag, image.manifest.mediaType, image.manifest.bytes);
}

export function buildIndex(images: { platform?: ImagePlatform; image: BuiltImage }[], mediaTypes: 'oci' | 'docker' = 'oci'): Blob {
  const mediaType = mediaTypes === 'oci' ? MT.ociIndex : MT.dockerList;
  const json = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map(({ platform, image }) => ({
      mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.size,
      platform: platform ?? image.platform,
    })),
  };
  return blob(mediaType, Buffer.from(JSON.stringify(json, null, 2)));
}

/** Push each image by digest and a multi-platform index (or Docker manifest list) under `tag`. */
export async function pushIndex(
  registry: TestRegistry, repo: string, tag: string, images: { platform?: ImagePlatform; image: BuiltImage }[],
  mediaTypes: 'oci' | 'docker' = 'oci',
): Promise<{ digest: string; index: Blob }> {
  for (const { image } of images) await pushImage(registry, repo, image.manifest.digest, image);
  const index = buildIndex(images, mediaTypes);
  await pushManifestBytes(registry, repo, tag, index.mediaType, index.bytes);
  return { digest: index.digest, index };
}

/**
 * The everyday test image: a busybox rootfs (gzip) with Cmd ["/bin/sh"], pushed as repo:tag.
 * Returns the image and its manifest digest.
 */
export async function pushBusybox(
  registry: TestRegistry, repo = 'library/busybox', tag = 'latest',
  opts: { config?: ImageConfigInput; mediaTypes?: 'oci' | 'docker'; compression?: Compression } = {},
): Promise<{ image: BuiltImage; digest: string }> {
  const layer = await busyboxRootfsLayer({ compression: opts.compression });
  const image = buildImage({ layers: [layer], mediaTypes: opts.mediaTypes, config: { Cmd: ['/bin/sh'], ...opts.config } });
  return { image, digest: await pushImage(registry, repo, tag, image) };
}

/** A single-platform image of `platform` whose one layer names its platform in /platform. */
export async function platformImage(platform: ImagePlatform, mediaTypes: 'oci' | 'docker' = 'oci'): Promise<BuiltImage> {
  const name = [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
  const layer = await layerFromEntries([{ type: 'file', path: 'platform', content: `${name}\n` }]);
  return buildImage({ layers: [layer], platform, mediaTypes, config: { Cmd: ['/bin/sh'] } });
}

function archiveFile(path: string, content: Buffer | string): { header: TarHeader; content: Buffer } {
  return { header: { path, type: 'file', mode: 0o644, mtime: new Date('2024-01-01T00:00:00Z') }, content: Buffer.from(content) };
}

function archiveDir(path: string): { header: TarHeader } {
  return { header: { path, type: 'dir', mode: 0o755, mtime: new Date('2024-01-01T00:00:00Z') } };
}

/**
 * An OCI image layout tar (oci-layout, index.json, blobs/sha256/*) holding `images`, each named
 * by the org.opencontainers.image.ref.name and io.containerd.image.name annotations. An entry with
 * `platforms` is written as a nested multi-platform index.
 */
export async function writeOciArchive(
  path: string,
  images: ({ image: BuiltImage; name?: string } | { platforms: { platform?: ImagePlatform; image: BuiltImage }[]; name?: string })[],
): Promise<void> {
  const blobs = new Map<string, Buffer>();
  const addImage = (image: BuiltImage) => {
    for (const l of image.layers) blobs.set(l.digest, l.blob);
    blobs.set(image.config.digest, image.config.bytes);
    blobs.set(image.manifest.digest, image.manifest.bytes);
  };
  const manifests = images.map((entry) => {
    const { name } = entry;
    let top: Blob;
    if ('platforms' in entry) {
      // A multi-platform image: the layout's index.json points at a nested image index.
      for (const p of entry.platforms) addImage(p.image);
      top = buildIndex(entry.platforms, 'oci');
      blobs.set(top.digest, top.bytes);
    } else {
      addImage(entry.image);
      top = entry.image.manifest;
    }
    const annotations: Record<string, string> = {};
    if (name) {
      annotations['io.containerd.image.name'] = name;
      const tag = /:([\w][\w.-]*)$/.exec(name.split('/').pop() ?? '')?.[1];
      if (tag) annotations['org.opencontainers.image.ref.name'] = tag;
    }
    return { mediaType: top.mediaType, digest: top.digest, size: top.size, annotations };
  });
  const index = { schemaVersion: 2, mediaType: MT.ociIndex, manifests };
  const entries = [
    archiveFile('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' })),
    archiveFile('index.json', JSON.stringify(index)),
    archiveDir('blobs'), archiveDir('blobs/sha256'),
    ...[...blobs].map(([digest, bytes]) => archiveFile(`blobs/sha256/${hex(digest)}`, bytes)),
  ];
  await writeFile(path, encodeTar(entries));
}

/**
 * A classic `docker save` tar: manifest.json, repositories, <config hex>.json and one
 * <diff id hex>/layer.tar (uncompressed) per layer. `names` are RepoTags like "busybox:latest".
 */
export async function writeDockerSaveArchive(path: string, images: { image: BuiltImage; names?: string[] }[]): Promise<void> {
  const files = new Map<string, Buffer>();
  const dirs = new Set<string>();
  const repositories: Record<string, Record<string, string>> = {};
  const manifest = images.map(({ image, names }) => {
    const configName = `${hex(image.config.digest)}.json`;
    files.set(configName, image.config.bytes);
    const layers = image.layers.map((l) => {
      const id = hex(l.diffId);
      dirs.add(id);
      files.set(`${id}/layer.tar`, l.tar);
      files.set(`${id}/VERSION`, Buffer.from('1.0'));
      return `${id}/layer.tar`;
    });
    for (const n of names ?? []) {
      const colon = n.lastIndexOf(':');
      const repo = colon > n.lastIndexOf('/') ? n.slice(0, colon) : n;
      const tag = colon > n.lastIndexOf('/') ? n.slice(colon + 1) : 'latest';
      (repositories[repo] ??= {})[tag] = hex(image.layers.at(-1)?.diffId ?? image.config.digest);
    }
    return { Config: configName, RepoTags: names ?? [], Layers: layers };
  });
  const entries = [
    ...[...dirs].map((d) => archiveDir(d)),
    ...[...files].map(([p, b]) => archiveFile(p, b)),
    archiveFile('manifest.json', JSON.stringify(manifest)),
    archiveFile('repositories', JSON.stringify(repositories)),
  ];
  await writeFile(path, encodeTar(entries));
}

/** What the merged view of realisticImageLayers must show (for tests that check a pull). */
export const REALISTIC_IMAGE = {
  /** Files and dirs a lower layer made and an upper layer deleted (whiteouts). */
  deleted: ['var/cache/apt/pkgcache.bin', 'var/cache/apt/srcpkgcache.bin', 'usr/share/doc/pkg3', 'app/node_modules/dep7', 'tmp/build.log'],
  /** An opaque dir: the layer that rewrote it hides everything lower layers put there. */
  opaqueDir: 'etc/app',
  /** What the opaque dir holds afterwards (nothing of the lower layers' etc/app). */
  opaqueDirContents: ['app.conf', 'conf.d'],
  /** Present in the merged view, with their content's layer noted for tests. */
  present: ['bin/busybox', 'bin/sh', 'usr/lib/runtime/libruntime0.so', 'app/server.js', 'app/node_modules/dep0/index.js', 'usr/bin/su-hard'],
} as const;

/**
 * A realistic 6-layer image, about `mb` MB compressed (default 100): a base OS (dirs, many small
 * files, symlinks, a setuid binary with a hardlink), packages (compressible docs, caches), a
 * runtime (big incompressible libraries), app dependencies (thousands of small files in a deep
 * tree), a cleanup layer (whiteouts of files and dirs from three lower layers, an opaque dir),
 * and the app itself. Sizes scale with `mb`; the structure (REALISTIC_IMAGE) does not.
 */
export async function realisticImageLayers(opts: { mb?: number; compression?: Compression } = {}): Promise<LayerBlob[]> {
  const mb = opts.mb ?? 100;
  const compression = opts.compression ?? 'gzip';
  const mtime = new Date('2024-01-01T00:00:00Z');
  const bytes = (share: number): number => Math.max(4096, Math.floor(share * mb * 1024 * 1024));
  // Text compresses ~5x like real docs and scripts; binaries are random (incompressible).
  const words = 'the quick brown fox jumps over a lazy dog while containers start and layers unpack '.split(' ');
  const text = (n: number, seed: number): Buffer => {
    let s = '';
    for (let i = seed; s.length < n; i++) s += `${words[(i * 7919) % words.length]} ${i % 97 === 0 ? '\n' : ''}`;
    return Buffer.from(s.slice(0, n));
  };
  const { randomBytes } = await import('node:crypto');
  const dir = (path: string, mode = 0o755): TarEntry => ({ type: 'dir', path, mode, mtime });
  const file = (path: string, content: Buffer | string, mode = 0o644): TarEntry => ({ type: 'file', path, content, mode, mtime });

  // 1: base OS, ~15%: a few hundred dirs and ~1500 small files.
  const base: TarEntry[] = ['bin', 'etc', 'etc/app', 'lib', 'usr', 'usr/bin', 'usr/lib', 'usr/share', 'usr/share/doc', 'var', 'var/cache', 'var/cache/apt', 'var/lib', 'home', 'root'].map((p) => dir(p));
  base.push(dir('tmp', 0o1777));
  base.push(file('bin/busybox', await readFile('/bin/busybox'), 0o755));
  base.push({ type: 'symlink', path: 'bin/sh', target: '/bin/busybox', mtime });
  base.push(file('usr/bin/su', randomBytes(64 << 10), 0o4755));
  base.push({ type: 'hardlink', path: 'usr/bin/su-hard', target: 'usr/bin/su' });
  base.push(file('etc/app/old.conf', 'legacy=1\n'), file('etc/app/defaults', 'x=1\n'));
  base.push(file('var/cache/apt/pkgcache.bin', randomBytes(32 << 10)), file('var/cache/apt/srcpkgcache.bin', randomBytes(32 << 10)));
  base.push(file('tmp/build.log', text(4096, 1)));
  const baseFiles = 1500;
  for (let i = 0; i < baseFiles; i++) {
    if (i % 50 === 0) base.push(dir(`usr/lib/mod${i / 50}`));
    const half = bytes(0.15) / baseFiles / 2;
    base.push(file(`usr/lib/mod${Math.floor(i / 50)}/f${i}`, Buffer.concat([randomBytes(Math.floor(half)), text(Math.floor(half), i)])));
  }

  // 2: packages, ~15%: compressible docs (one package's docs are deleted later), apt caches.
  const pkgs: TarEntry[] = [];
  for (let p = 0; p < 10; p++) {
    pkgs.push(dir(`usr/share/doc/pkg${p}`));
    for (let f = 0; f < 40; f++) pkgs.push(file(`usr/share/doc/pkg${p}/doc${f}.txt`, text(Math.floor(bytes(0.15) * 4 / 400), p * 100 + f)));
  }
  pkgs.push(file('var/cache/apt/archives.bin', randomBytes(Math.floor(bytes(0.15) / 5))));

  // 3: runtime, ~50%: a few big incompressible libraries.
  const runtime: TarEntry[] = [dir('usr/lib/runtime')];
  for (let i = 0; i < 8; i++) runtime.push(file(`usr/lib/runtime/libruntime${i}.so`, randomBytes(Math.floor(bytes(0.5) / 8)), 0o755));

  // 4: app dependencies, ~15%: ~3000 small files, 4 levels deep.
  const deps: TarEntry[] = [dir('app'), dir('app/node_modules')];
  for (let d = 0; d < 30; d++) {
    deps.push(dir(`app/node_modules/dep${d}`), dir(`app/node_modules/dep${d}/lib`), dir(`app/node_modules/dep${d}/lib/util`));
    deps.push(file(`app/node_modules/dep${d}/index.js`, text(2048, d)));
    for (let f = 0; f < 100; f++) {
      const size = Math.floor(bytes(0.15) / 3000);
      deps.push(file(`app/node_modules/dep${d}/lib/util/m${f}.js`, f % 2 ? text(size, f) : randomBytes(size)));
    }
  }

  // 5: cleanup: whiteouts into layers 1, 2 and 4; etc/app made opaque and rewritten.
  const cleanup: TarEntry[] = [
    { type: 'whiteout', path: 'var/cache/apt/pkgcache.bin' },
    { type: 'whiteout', path: 'var/cache/apt/srcpkgcache.bin' },
    { type: 'whiteout', path: 'usr/share/doc/pkg3' },
    { type: 'whiteout', path: 'app/node_modules/dep7' },
    { type: 'whiteout', path: 'tmp/build.log' },
    dir('etc/app'),
    { type: 'opaque', path: 'etc/app' },
    file('etc/app/app.conf', 'listen=8080\n'),
    dir('etc/app/conf.d'),
  ];

  // 6: the app, ~5%.
  const app: TarEntry[] = [file('app/server.js', text(Math.floor(bytes(0.05) / 2), 3)), file('app/bundle.bin', randomBytes(Math.floor(bytes(0.05) / 2)))];

  const layers: LayerBlob[] = [];
  for (const entries of [base, pkgs, runtime, deps, cleanup, app]) layers.push(await layerFromEntries(entries, compression));
  return layers;
}
