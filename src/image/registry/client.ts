// The OCI distribution (v2) client the image service pulls with. `resolve` turns a reference into
// the exact image manifest for this platform (following an index or manifest list), `openBlob`
// streams a layer or config blob, `fetchConfig` returns the config verified by digest. Every
// request tries the configured mirrors in order, then the registry itself.
//
//   const client = new RegistryClient(hostsConfigFromCrib(config));
//   const image = await client.resolve(parseReference('busybox'), { auth });
//   const config = await client.fetchConfig(image, { auth });
//   for (const layer of image.layers) pipe(await client.openBlob(image, layer, { auth }), store);
import type { Readable } from 'node:stream';
import {
  CribError, DataLossError, DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, UnavailableError,
} from '../../errors.js';
import { log } from '../../log.js';
import { formatLimit, limitExceeded } from '../limits.js';
import { canonicalRegistry, credentialOwner } from './credential-scope.js';
import type { ImageReference } from '../reference.js';
import { credentialsFrom, type Credentials } from './auth.js';
import { RegistryAuthFile } from './auth-file.js';
import { ResumableBlobStream, formatSeconds, type OpenedBody } from './blob-stream.js';
import { readBoundedBody } from './bounded-body.js';
import { endpointsFor, hostOptions, withDefaults, type RegistryHostsConfig, type ResolvedHostsConfig } from './hosts.js';
import { sha256Digest, verifyDigest } from '../../digest/digest.js';
import { checkManifestCounts, describeBlob, parseManifest } from './manifest.js';
import { hostPlatform, selectManifest } from './platform.js';
import { errorForResponse } from './registry-errors.js';
import { RegistryTransport } from './registry-transport.js';
import type { RegistryResponse } from './registry-http.js';
import {
  INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MediaType, type CriAuth, type Descriptor, type Endpoint,
  type Platform, type RequestOptions, type ResolvedImage,
} from './types.js';

export * from './types.js';
export type { RegistryHostsConfig, RegistryHostOptions, RegistryAuthConfig } from './hosts.js';
export { hostsConfigFromCrib } from './hosts.js';

const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(', ');

export interface ResolveOptions extends RequestOptions {
  /** The platform to select from an index (default: this host's). */
  platform?: Platform;
}

/** Where a blob comes from: a resolved image, or just its reference (endpoint order from config). */
export interface BlobSource {
  ref: ImageReference;
  endpoint?: Endpoint;
}

export interface OpenBlobOptions extends RequestOptions {
  /** Start at this byte (resuming a partial download kept by the caller). */
  offset?: number;
}

export class RegistryClient {
  readonly config: ResolvedHostsConfig;
  private readonly transport: RegistryTransport;

  /** The credentials file ([image] auth_file), if configured. */
  private readonly authFile?: RegistryAuthFile;

  constructor(config: RegistryHostsConfig = {}) {
    this.config = withDefaults(config);
    if (config.authFile) this.authFile = new RegistryAuthFile(config.authFile);
    this.transport = new RegistryTransport(this.config);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  /** The manifest of `ref` for the wanted platform, fetched and verified. */
  async resolve(ref: ImageReference, opts: ResolveOptions = {}): Promise<ResolvedImage> {
    const image = ref.toString();
    const reference = ref.digest ?? ref.tag;
    if (reference === undefined) throw new InvalidArgumentError(`image reference "${image}" has neither tag nor digest`);
    const endpoints = endpointsFor(this.config, ref.domain);
    const top = await this.eachEndpoint(endpoints, `image "${image}"`, (ep) => this.fetchManifest(ep, ref, reference, opts));
    let parsed = parseManifest(top.bytes, top.contentType, image);
    checkManifestCounts(parsed, this.config.limits, image);
    if (parsed.kind === 'manifest') {
      return this.resolved(ref, top.endpoint, top.digest, parsed.mediaType, parsed.manifest, top.bytes);
    }
    const platform = opts.platform ?? hostPlatform();
    const chosen = selectManifest(parsed.index.manifests, platform, image);
    if (INDEX_MEDIA_TYPES.includes(chosen.mediaType)) {
      throw new FailedPreconditionError(`image "${image}": the index entry for ${chosen.digest} is itself an index; nested indexes are not supported`);
    }
    if (!MANIFEST_MEDIA_TYPES.includes(chosen.mediaType)) {
      throw new FailedPreconditionError(`image "${image}": the index entry for this platform has unsupported media type "${chosen.mediaType}"`);
    }
    const maxManifest = this.config.limits.maxManifestBytes;
    if (chosen.size > maxManifest) {
      throw limitExceeded('maxManifestBytes', maxManifest, `image "${image}": the index says manifest ${chosen.digest} is ${formatLimit('maxManifestBytes', chosen.size)}`);
    }
    // The platform manifest comes from the endpoint that served the index, then any other.
    const rest = [top.endpoint, ...endpoints.filter((e) => e !== top.endpoint)];
    const child = await this.eachEndpoint(rest, `image "${image}"`, (ep) => this.fetchManifest(ep, ref, chosen.digest, opts));
    if (child.bytes.length !== chosen.size) {
      throw new DataLossError(`image "${image}": manifest ${chosen.digest} is ${child.bytes.length} bytes, the index says ${chosen.size}`);
    }
    parsed = parseManifest(child.bytes, child.contentType ?? chosen.mediaType, image);
    checkManifestCounts(parsed, this.config.limits, image);
    if (parsed.kind !== 'manifest') {
      throw new FailedPreconditionError(`image "${image}": the manifest for this platform (${chosen.digest}) is an index, not an image manifest`);
    }
    const resolved = this.resolved(ref, child.endpoint, chosen.digest, parsed.mediaType, parsed.manifest, child.bytes);
    resolved.indexDigest = top.digest;
    resolved.indexBytes = top.bytes;
    resolved.platform = chosen.platform;
    return resolved;
  }

  private resolved(ref: ImageReference, endpoint: Endpoint, digest: string, mediaType: string, manifest: ResolvedImage['manifest'], bytes: Buffer): ResolvedImage {
    return {
      ref, endpoint, manifestDigest: digest, mediaType, manifest, manifestBytes: bytes,
      configDescriptor: manifest.config, layers: manifest.layers,
    };
  }

  /**
   * A stream of the blob's bytes. Throws (NotFound, Unauthenticated, Unavailable…) when no
   * endpoint serves it; once streaming, interruptions are resumed, and stalls and downloads
   * averaging under pull_min_rate fail the stream with DeadlineExceeded. The bytes are not
   * verified here: that is the content store's job.
   */
  async openBlob(source: BlobSource, desc: Descriptor, opts: OpenBlobOptions = {}): Promise<ResumableBlobStream> {
    const endpoints = this.blobEndpoints(source);
    const creds = await this.credentialsFor(source.ref, opts.auth);
    const what = describeBlob(desc);
    let preferred = endpoints[0]!;
    // A resume is also cancelled when the stream ends first (its own signal, not only the caller's).
    const open = async (offset: number, cancel: AbortSignal | undefined): Promise<OpenedBody> => {
      const order = [preferred, ...endpoints.filter((e) => e !== preferred)];
      return this.eachEndpoint(order, what, async (ep) => {
        const opened = await this.answeredWithin(ep, what, cancel,
          (signal) => this.requestBlob(ep, source.ref, desc, what, offset, creds(ep), signal));
        preferred = ep;
        return opened;
      });
    };
    const first = await open(opts.offset ?? 0, opts.signal);
    return new ResumableBlobStream(first, {
      digest: desc.digest,
      what,
      size: desc.size,
      offset: opts.offset ?? 0,
      retries: this.config.retries,
      backoffMs: this.config.backoffMs,
      progressTimeoutMs: this.config.progressTimeoutMs,
      minBytesPerSecond: this.config.minBytesPerSecond,
      minRateGraceMs: this.config.minRateGraceMs,
      signal: opts.signal,
      reopen: open,
    });
  }

  /** The image config JSON, verified against its descriptor's digest and size. */
  async fetchConfig(resolved: ResolvedImage, opts: RequestOptions = {}): Promise<Buffer> {
    const desc = resolved.configDescriptor;
    const max = this.config.limits.maxConfigBytes;
    if (desc.size > max) {
      throw limitExceeded('maxConfigBytes', max, `the config blob of image "${resolved.ref}" is ${formatLimit('maxConfigBytes', desc.size)}`);
    }
    const stream = await this.openBlob(resolved, desc, opts);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream as Readable) {
      size += (chunk as Buffer).length;
      if (size > desc.size) {
        stream.destroy();
        throw new DataLossError(`image "${resolved.ref}": config blob ${desc.digest} is longer than the ${desc.size} bytes its descriptor states`);
      }
      chunks.push(chunk as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    verifyDigest(bytes, desc.digest, `image "${resolved.ref}": config blob`);
    return bytes;
  }

  private blobEndpoints(source: BlobSource): Endpoint[] {
    const all = endpointsFor(this.config, source.ref.domain);
    if (!source.endpoint) return all;
    const first = all.find((e) => e.url === source.endpoint!.url) ?? source.endpoint;
    return [first, ...all.filter((e) => e.url !== first.url)];
  }

  /**
   * Per endpoint, the credentials it may be sent: the request's own only at the registry they
   * belong to (see credential-scope.ts), and never at a mirror; otherwise what the config file
   * gives that endpoint's host (a mirror's own entry, or the registry's), else what the
   * credentials file gives it under the same rule. The config file wins: its credentials were
   * written for crib, a shared credentials file's for whoever logged in last.
   */
  private async credentialsFor(ref: ImageReference, auth: CriAuth | undefined): Promise<(ep: Endpoint) => Credentials | undefined> {
    await this.authFile?.refresh();
    const fromRequest = credentialsFrom(auth);
    const owner = fromRequest && credentialOwner(auth?.serverAddress, ref.domain);
    const ownedHere = fromRequest !== undefined && owner === canonicalRegistry(ref.domain);
    if (fromRequest && !ownedHere) {
      log.info({ image: ref.toString(), serverAddress: auth?.serverAddress },
        'the pull request\'s credentials belong to another registry (AuthConfig.server_address); not sending them');
    }
    return (ep) => {
      if (ownedHere && !ep.mirror) return fromRequest;
      const configured = ep.mirror ? this.config.hosts[ep.host]?.auth : hostOptions(this.config, ref.domain)?.auth;
      return credentialsFrom(configured) ?? credentialsFrom(this.authFile?.lookup(ep.mirror ? ep.host : ref.domain, ref.path));
    };
  }

  private async fetchManifest(ep: Endpoint, ref: ImageReference, reference: string, opts: RequestOptions) {
    const what = `image "${ref}"`;
    const creds = (await this.credentialsFor(ref, opts.auth))(ep);
    const res = await this.transport.send(ep, {
      path: `/v2/${ref.path}/manifests/${reference}${ep.mirror ? `?ns=${encodeURIComponent(ref.domain)}` : ''}`,
      headers: { accept: MANIFEST_ACCEPT },
      scope: `repository:${ref.path}:pull`,
      creds,
      what,
      signal: opts.signal,
      bodyTimeoutMs: this.config.requestTimeoutMs,
    });
    if (res.statusCode !== 200) throw await errorForResponse(res, ep.host, what);
    const max = this.config.limits.maxManifestBytes;
    const tooLarge = (size: string) => limitExceeded('maxManifestBytes', max, `the manifest of ${what} from ${ep.host} is ${size}`);
    const announced = contentLength(res);
    if (announced !== undefined && announced > max) {
      res.body.destroy();
      throw tooLarge(formatLimit('maxManifestBytes', announced));
    }
    const bytes = await readBoundedBody(res.body, {
      limit: max,
      deadlineMs: this.config.progressTimeoutMs,
      what: `the manifest of ${what} from ${ep.host}`,
      tooLarge: () => tooLarge(`more than ${formatLimit('maxManifestBytes', max)}`),
    });
    const digest = sha256Digest(bytes);
    if (reference.startsWith('sha256:')) {
      verifyDigest(bytes, reference, `manifest of ${what} from ${ep.host}`);
    } else {
      const claimed = header(res, 'docker-content-digest');
      if (claimed?.startsWith('sha256:') && claimed !== digest) {
        throw new DataLossError(`manifest of ${what} from ${ep.host}: content does not match its Docker-Content-Digest (expected ${claimed}, got ${digest})`);
      }
    }
    return { endpoint: ep, bytes, digest, contentType: header(res, 'content-type') };
  }

  /**
   * Run `request` (one endpoint's attempts at a blob, retries included) until the registry
   * answers. A blob download whose bytes stop moving for pull_progress_timeout is a stalled pull,
   * and waiting for an answer is no different: a registry that never completes its response
   * headers is given up on after that long too, rather than after every retry's
   * request_timeout. The next endpoint, if any, is tried then.
   */
  private async answeredWithin<T>(ep: Endpoint, what: string, signal: AbortSignal | undefined,
    request: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const stalled = new AbortController();
    const timer = setTimeout(() => stalled.abort(), this.config.progressTimeoutMs);
    try {
      return await request(signal ? AbortSignal.any([signal, stalled.signal]) : stalled.signal);
    } catch (err) {
      if (!stalled.signal.aborted || signal?.aborted) throw err;
      throw new DeadlineExceededError(
        `pull of ${what} stalled: registry ${ep.host} sent no answer for ${formatSeconds(this.config.progressTimeoutMs)}` +
        ' (raise image.pull_progress_timeout if the registry is this slow)');
    } finally {
      clearTimeout(timer);
    }
  }

  private async requestBlob(ep: Endpoint, ref: ImageReference, desc: Descriptor, what: string, offset: number,
    creds: Credentials | undefined, signal?: AbortSignal): Promise<OpenedBody> {
    const res = await this.transport.send(ep, {
      path: `/v2/${ref.path}/blobs/${desc.digest}${ep.mirror ? `?ns=${encodeURIComponent(ref.domain)}` : ''}`,
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      scope: `repository:${ref.path}:pull`,
      creds,
      what,
      signal,
      // The blob stream watches progress itself, excluding time the consumer is not reading.
      bodyTimeoutMs: 0,
      blob: true,
    });
    // A registry announcing more bytes than the descriptor says is lying about one of them:
    // refuse before reading rather than after the content store counts past the size.
    const announced = contentLength(res);
    if ((res.statusCode === 200 || res.statusCode === 206) && announced !== undefined && announced > desc.size - (res.statusCode === 206 ? offset : 0)) {
      res.body.destroy();
      throw new DataLossError(`pull of ${what}: registry ${ep.host} announced ${announced} bytes for a blob of ${desc.size} bytes`);
    }
    if (res.statusCode === 206 && offset > 0) {
      const start = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '')?.[1];
      if (start !== undefined && Number(start) === offset) return { body: res.body, skip: 0 };
      res.body.destroy();
      throw new UnavailableError(`pull of ${what}: registry ${ep.host} answered a range request for byte ${offset} with range ${header(res, 'content-range') ?? '(none)'}`);
    }
    if (res.statusCode === 200) return { body: res.body, skip: offset };
    throw await errorForResponse(res, ep.host, what);
  }

  /**
   * Run `fn` against each endpoint in order until one succeeds. A failing mirror is logged and
   * skipped; the last endpoint's error is the one reported.
   */
  private async eachEndpoint<T>(endpoints: Endpoint[], what: string, fn: (ep: Endpoint) => Promise<T>): Promise<T> {
    let lastErr: unknown;
    for (const [i, ep] of endpoints.entries()) {
      try {
        return await fn(ep);
      } catch (err) {
        lastErr = err;
        const aborted = err instanceof Error && err.name === 'AbortError';
        if (aborted || i === endpoints.length - 1) break;
        log.warn({ endpoint: ep.url, mirror: ep.mirror, err: err instanceof CribError ? err.message : String(err) },
          `fetching ${what} from ${ep.host} failed; trying the next endpoint`);
      }
    }
    throw lastErr;
  }
}

function header(res: RegistryResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The Content-Length a response announced, when it announced a valid one. */
function contentLength(res: RegistryResponse): number | undefined {
  const value = header(res, 'content-length');
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}
