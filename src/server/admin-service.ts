// crib's own admin calls beside the CRI: image import/export for air-gapped nodes, and a pull that
// streams its progress (the CRI's PullImage is unary; `crib pull` shows layers). They travel
// on the same socket as JSON-encoded gRPC messages, so the CLI needs no second listener and no
// proto file of our own. The server side goes through implementService like the CRI services.
import { InvalidArgumentError } from '../errors.js';
import type { ImageService } from '../image/image-service.js';
import type { PullSnapshot } from '../image/pull-progress.js';
import type { CriAuth } from '../image/registry/types.js';
import type { ServiceDefinition } from './grpc-server.js';
import type { ServiceHandlers } from './rpc.js';

export interface ImportImageRequest {
  /** Absolute path of an OCI image layout tar or a `docker save` tar on the daemon's host. */
  path: string;
}
export interface ImportImageResponse {
  images: { id: string; repoTags: string[] }[];
}

export interface ExportImageRequest {
  /** The image: reference, id or id prefix. */
  image: string;
  /** Absolute path of the OCI layout tar to create on the daemon's host (must not exist). */
  path: string;
}
export interface ExportImageResponse {
  id: string;
  repoTags: string[];
}

export interface StreamPullRequest {
  /** An image reference, as PullImage's image.image. */
  image: string;
  /** Registry credentials, as the CRI's AuthConfig (camelCase). */
  auth?: CriAuth;
}
/** Progress snapshots while the pull runs; the last message has phase "done" and imageRef. */
export interface StreamPullResponse extends PullSnapshot {
  imageRef?: string;
}

/** Longest reference StreamPull accepts: far above any real one (a name is at most 255). */
const MAX_IMAGE_REFERENCE = 4096;
/** How often a pull's progress is sent while it changes: smooth to a person, cheap for us. */
const PROGRESS_INTERVAL_MS = 200;
const AUTH_FIELDS = ['username', 'password', 'auth', 'serverAddress', 'identityToken', 'registryToken'] as const;

const encode = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

/** Whatever a client sent, decoded or not: the handler refuses what is not JSON, by name. */
type Decoded = { ok: true; value: unknown } | { ok: false; error: string };

function decodeRequest(b: Buffer): Decoded {
  try {
    return { ok: true, value: JSON.parse(b.toString('utf8')) as unknown };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

export const ADMIN_SERVICE_NAME = 'crib.admin.v1.Admin';
export const ADMIN_IMPORT_PATH = `/${ADMIN_SERVICE_NAME}/ImportImage`;
export const ADMIN_STREAM_PULL_PATH = `/${ADMIN_SERVICE_NAME}/StreamPull`;
export const ADMIN_EXPORT_PATH = `/${ADMIN_SERVICE_NAME}/ExportImage`;

export const adminServiceDefinition = {
  ImportImage: {
    path: ADMIN_IMPORT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: ImportImageRequest): Buffer => encode(v),
    requestDeserialize: decodeRequest,
    responseSerialize: (v: ImportImageResponse): Buffer => encode(v),
    responseDeserialize: (b: Buffer): ImportImageResponse => JSON.parse(b.toString('utf8')) as ImportImageResponse,
  },
  ExportImage: {
    path: ADMIN_EXPORT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: ExportImageRequest): Buffer => encode(v),
    requestDeserialize: decodeRequest,
    responseSerialize: (v: ExportImageResponse): Buffer => encode(v),
    responseDeserialize: (b: Buffer): ExportImageResponse => JSON.parse(b.toString('utf8')) as ExportImageResponse,
  },
  StreamPull: {
    path: ADMIN_STREAM_PULL_PATH,
    requestStream: false,
    responseStream: true,
    requestSerialize: (v: StreamPullRequest): Buffer => encode(v),
    requestDeserialize: decodeRequest,
    responseSerialize: (v: StreamPullResponse): Buffer => encode(v),
    responseDeserialize: (b: Buffer): StreamPullResponse => JSON.parse(b.toString('utf8')) as StreamPullResponse,
  },
} satisfies ServiceDefinition;

function streamPullRequest(req: Decoded): { image: string; auth: CriAuth | undefined } {
  if (!req.ok) throw new InvalidArgumentError(`StreamPull: the request is not JSON (${req.error})`);
  const body = req.value as { image?: unknown; auth?: unknown } | null;
  const image = typeof body?.image === 'string' ? body.image.trim() : '';
  if (image === '') throw new InvalidArgumentError('StreamPull: image must name an image reference');
  if (image.length > MAX_IMAGE_REFERENCE) {
    throw new InvalidArgumentError(`StreamPull: image is ${image.length} characters, more than the ${MAX_IMAGE_REFERENCE} allowed`);
  }
  if (body?.auth === undefined || body.auth === null) return { image, auth: undefined };
  if (typeof body.auth !== 'object') throw new InvalidArgumentError('StreamPull: auth must be an object like the CRI AuthConfig');
  const auth: CriAuth = {};
  for (const [k, v] of Object.entries(body.auth)) {
    if (!(AUTH_FIELDS as readonly string[]).includes(k)) throw new InvalidArgumentError(`StreamPull: auth.${k} is not an AuthConfig field`);
    if (typeof v !== 'string' || v.length > MAX_IMAGE_REFERENCE) throw new InvalidArgumentError(`StreamPull: auth.${k} must be a string of at most ${MAX_IMAGE_REFERENCE} characters`);
    auth[k as (typeof AUTH_FIELDS)[number]] = v;
  }
  return { image, auth };
}

export function adminHandlers(images: ImageService): ServiceHandlers<typeof adminServiceDefinition> {
  return {
    ImportImage: async (req) => {
      if (!req.ok) throw new InvalidArgumentError(`ImportImage: the request is not JSON (${req.error})`);
      const path = (req.value as Partial<ImportImageRequest> | null)?.path;
      if (typeof path !== 'string' || !path.startsWith('/')) {
        throw new InvalidArgumentError('ImportImage: path must be an absolute path to an image archive');
      }
      const views = await images.importArchive(path);
      return { images: views.map((v) => ({ id: v.id, repoTags: v.repoTags })) };
    },
    ExportImage: async (req) => {
      if (!req.ok) throw new InvalidArgumentError(`ExportImage: the request is not JSON (${req.error})`);
      const body = req.value as Partial<ExportImageRequest> | null;
      const image = typeof body?.image === 'string' ? body.image.trim() : '';
      if (image === '' || image.length > MAX_IMAGE_REFERENCE) {
        throw new InvalidArgumentError(`ExportImage: image must name an image (at most ${MAX_IMAGE_REFERENCE} characters)`);
      }
      const path = body?.path;
      if (typeof path !== 'string' || !path.startsWith('/') || path.length > MAX_IMAGE_REFERENCE) {
        throw new InvalidArgumentError('ExportImage: path must be an absolute path for the new archive');
      }
      const view = await images.exportArchive(image, path);
      return { id: view.id, repoTags: view.repoTags };
    },
    StreamPull: async (req, ctx, send) => {
      const { image, auth } = streamPullRequest(req);
      // The pull itself is not the caller's: like PullImage it goes on if the client leaves
      // (kubelet may be pulling the same image). Only the progress messages stop.
      const pulled = images.pull(image, auth);
      const progress = images.progressOf(image);
      let last = '';
      const sendIfChanged = (): void => {
        if (!progress) return;
        const snap = progress.snapshot();
        const key = JSON.stringify({ ...snap, elapsedMs: 0 });
        if (key === last) return;
        last = key;
        send(snap);
      };
      sendIfChanged();
      const timer = setInterval(sendIfChanged, PROGRESS_INTERVAL_MS);
      try {
        const cancelled = new Promise<never>((_, reject) => {
          if (ctx.signal.aborted) reject(ctx.signal.reason);
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
        });
        const view = await Promise.race([pulled, cancelled]);
        const final = progress?.snapshot() ?? { image, phase: 'done' as const, layers: [], elapsedMs: 0 };
        send({ ...final, phase: 'done', imageRef: view.id });
      } finally {
        clearInterval(timer);
      }
    },
  };
}
