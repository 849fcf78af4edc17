// The shapes the registry client speaks in: OCI descriptors, manifests and indexes (Docker's
// schema2 and manifest lists have the same fields under other media types), and what
// RegistryClient.resolve hands back to the puller.
import type { ImageReference } from '../reference.js';

export const MediaType = {
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export const INDEX_MEDIA_TYPES: readonly string[] = [MediaType.OciIndex, MediaType.DockerManifestList];
export const MANIFEST_MEDIA_TYPES: readonly string[] = [MediaType.OciManifest, MediaType.DockerManifest];

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  /** "sha256:<hex>" */
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/**
 * Credentials for one pull, as the CRI AuthConfig carries them: username/password, or `auth`
 * (base64 "user:pass"), or identityToken (an OAuth2 refresh token exchanged at the token realm),
 * or registryToken (a bearer token sent as is).
 */
export interface CriAuth {
  username?: string;
  password?: string;
  auth?: string;
  serverAddress?: string;
  identityToken?: string;
  registryToken?: string;
}

/** One place an image can be fetched from: a mirror or the registry itself. */
export interface Endpoint {
  /** Base URL with scheme, no trailing slash: "http://127.0.0.1:5001". */
  url: string;
  /** host[:port] of the URL, the key of its own hosts-config entry. */
  host: string;
  /** Path prefix before /v2 for mirrors configured with one ("" usually). */
  pathPrefix: string;
  /** A mirror rather than the image's own registry. */
  mirror: boolean;
  /** Skip TLS verification (and allow http). */
  insecure: boolean;
  /** When https fails to connect or handshake, try the same host over plain http. */
  httpFallback: boolean;
}

export interface ResolvedImage {
  ref: ImageReference;
  /** The endpoint that served the manifest; blobs are fetched from it first. */
  endpoint: Endpoint;
  /** Digest of the selected platform's image manifest. */
  manifestDigest: string;
  /** Digest of the index or manifest list the platform manifest was chosen from, if any. */
  indexDigest?: string;
  /** The raw index bytes, when there was one (kept so a store can record the repo digest). */
  indexBytes?: Buffer;
  mediaType: string;
  manifest: ImageManifest;
  manifestBytes: Buffer;
  configDescriptor: Descriptor;
  layers: Descriptor[];
  /** The platform of the chosen manifest as the index described it (undefined without index). */
  platform?: Platform;
}

export interface RequestOptions {
  auth?: CriAuth;
  signal?: AbortSignal;
}
