// crib's own admin calls beside the CRI (today: image import for air-gapped nodes). They travel
// on the same socket as JSON-encoded gRPC messages, so the CLI needs no second listener and no
// proto file of our own. The server side goes through implementService like the CRI services.
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from '../errors.js';
import type { ImageService } from '../image/image-service.js';
import type { ServiceHandlers } from './rpc.js';

export interface ImportImageRequest {
  /** Absolute path of an OCI image layout tar or a `docker save` tar on the daemon's host. */
  path: string;
}
export interface ImportImageResponse {
  images: { id: string; repoTags: string[] }[];
}

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
} satisfies grpc.ServiceDefinition;

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
  };
}

/** Client side, for `crib image import`. */
export function importImageViaDaemon(address: string, path: string): Promise<ImportImageResponse> {
  const Client = grpc.makeGenericClientConstructor(adminServiceDefinition, 'Admin');
  const client = new Client(address, grpc.credentials.createInsecure()) as unknown as {
    ImportImage(req: ImportImageRequest, cb: (err: grpc.ServiceError | null, res: ImportImageResponse) => void): void;
    close(): void;
  };
  return new Promise((resolve, reject) =>
    client.ImportImage({ path }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    }),
  );
}
