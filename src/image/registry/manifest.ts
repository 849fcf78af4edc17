// Reading what a registry calls a manifest: working out its media type (the Content-Type header,
// else the body's mediaType, else its shape), refusing what we cannot run, and checking that the
// descriptors in it are well-formed before anything downstream trusts them.
import { DataLossError, FailedPreconditionError } from '../../errors.js';
import { limitExceeded, type ImageLimits } from '../limits.js';
import {
  INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MediaType, type Descriptor, type ImageIndex, type ImageManifest,
} from './types.js';

const DIGEST = /^sha256:[a-f0-9]{64}$/;

const LAYER_MEDIA_TYPES = new Set<string>([
  MediaType.OciLayer, MediaType.OciLayerGzip, MediaType.OciLayerZstd, MediaType.DockerLayerGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);
const CONFIG_MEDIA_TYPES = new Set<string>([MediaType.OciConfig, MediaType.DockerConfig]);

/** How messages name a blob of an image: "config sha256:…" or "layer sha256:…". */
export function describeBlob(desc: Descriptor): string {
  // parseManifest refuses an image whose config has another media type.
  return `${CONFIG_MEDIA_TYPES.has(desc.mediaType) ? 'config' : 'layer'} ${desc.digest}`;
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; index: ImageIndex }
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest };

/**
 * Parse manifest bytes served with `contentType`. Schema 1 manifests are refused with
 * FailedPrecondition: the reference is fine, but the image was pushed in a format deprecated
 * since 2017 and removed from Docker and containerd, and retrying cannot help until it is
 * re-pushed. Unknown media types are refused the same way, naming the type.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined, image: string): ParsedManifest {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new DataLossError(`manifest of image "${image}" is not valid JSON`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new DataLossError(`manifest of image "${image}" is not a JSON object`);
  }
  const header = contentType?.split(';')[0]!.trim().toLowerCase();
  const generic = !header || header === 'application/json' || header === 'text/plain' || header === 'application/octet-stream';
  let mediaType = generic ? undefined : header;
  if (mediaType === undefined && typeof body['mediaType'] === 'string') mediaType = body['mediaType'];
  if (body['schemaVersion'] === 1 || mediaType === MediaType.DockerSchema1 || mediaType === MediaType.DockerSchema1Signed) {
    throw new FailedPreconditionError(
      `image "${image}" uses the Docker schema 1 manifest format, which crib does not support; re-push it with a current client (schema 2 or OCI)`);
  }
  if (mediaType === undefined) {
    if (Array.isArray(body['manifests'])) mediaType = MediaType.OciIndex;
    else if (body['config'] !== undefined && Array.isArray(body['layers'])) mediaType = MediaType.OciManifest;
    else throw new FailedPreconditionError(`manifest of image "${image}" has no media type and is neither an index nor an image manifest`);
  }
  if (body['schemaVersion'] !== 2) {
    throw new DataLossError(`manifest of image "${image}" has schemaVersion ${JSON.stringify(body['schemaVersion'])}, expected 2`);
  }
  if (INDEX_MEDIA_TYPES.includes(mediaType)) {
    const manifests = body['manifests'];
    if (!Array.isArray(manifests)) throw new DataLossError(`index of image "${image}" has no manifests list`);
    manifests.forEach((d, i) => checkDescriptor(d, `index of image "${image}", manifests[${i}]`));
    return { kind: 'index', mediaType, index: body as unknown as ImageIndex };
  }
  if (MANIFEST_MEDIA_TYPES.includes(mediaType)) {
    const config = body['config'];
    const layers = body['layers'];
    checkDescriptor(config, `manifest of image "${image}", config`);
    if (!Array.isArray(layers)) throw new DataLossError(`manifest of image "${image}" has no layers list`);
    const cfg = config as Descriptor;
    if (!CONFIG_MEDIA_TYPES.has(cfg.mediaType)) {
      throw new FailedPreconditionError(
        `image "${image}" is not a container image: its config media type is "${cfg.mediaType}" (expected ${[...CONFIG_MEDIA_TYPES].join(' or ')})`);
    }
    layers.forEach((d, i) => {
      checkDescriptor(d, `manifest of image "${image}", layers[${i}]`);
      const type = (d as Descriptor).mediaType;
      if (!LAYER_MEDIA_TYPES.has(type)) {
        throw new FailedPreconditionError(`image "${image}" has layer ${i} of unsupported media type "${type}"`);
      }
    });
    return { kind: 'manifest', mediaType, manifest: body as unknown as ImageManifest };
  }
  throw new FailedPreconditionError(`image "${image}" has a manifest of unsupported media type "${mediaType}"`);
}

/**
 * ResourceExhausted when an index lists more manifests, or a manifest more layers, than the
 * limits allow. Checked before any entry is acted on, so an oversized list costs nothing more.
 */
export function checkManifestCounts(parsed: ParsedManifest, limits: Pick<ImageLimits, 'maxIndexManifests' | 'maxLayers'>, image: string): void {
  if (parsed.kind === 'index') {
    const n = parsed.index.manifests.length;
    if (n > limits.maxIndexManifests) throw limitExceeded('maxIndexManifests', limits.maxIndexManifests, `the index of image "${image}" lists ${n} manifests`);
    return;
  }
  const n = parsed.manifest.layers.length;
  if (n > limits.maxLayers) throw limitExceeded('maxLayers', limits.maxLayers, `image "${image}" has ${n} layers`);
}

function checkDescriptor(d: unknown, where: string): asserts d is Descriptor {
  if (typeof d !== 'object' || d === null) throw new DataLossError(`${where} is not a descriptor object`);
  const desc = d as Record<string, unknown>;
  if (typeof desc['mediaType'] !== 'string') throw new DataLossError(`${where} has no mediaType`);
  if (typeof desc['digest'] !== 'string' || !DIGEST.test(desc['digest'])) {
    throw new DataLossError(`${where} has digest ${JSON.stringify(desc['digest'])}, expected sha256:<64 hex>`);
  }
  if (typeof desc['size'] !== 'number' || !Number.isSafeInteger(desc['size']) || desc['size'] < 0) {
    throw new DataLossError(`${where} has an invalid size ${JSON.stringify(desc['size'])}`);
  }
}
