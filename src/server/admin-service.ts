// crib's own admin calls beside the CRI (today: image import for air-gapped nodes). They travel
// on the same socket as JSON-encoded gRPC messages, so the CLI needs no second listener and no
// proto file of our own.
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from '../errors.js';
import type { ImageService } from '../image/image-service.js';
import { log } from '../log.js';
import { failureStatus } from './rpc.js';

export interface ImportImageRequest {
  /** Absolute path of an OCI image layout tar or a `docker save` tar on the daemon's host. */
  path: string;
}
export interface ImportImageResponse {
  images: { id: string; repoTags: string[] }[];
}

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown,
};

export const ADMIN_IMPORT_PATH = '/crib.admin.v1.Admin/ImportImage';

export function adminServiceDefinition(): grpc.ServiceDefinition {
  return {
    ImportImage: {
      path: ADMIN_IMPORT_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: json.serialize,
      requestDeserialize: json.deserialize,
      responseSerialize: json.serialize,
      responseDeserialize: json.deserialize,
    },
  };
}

export function adminHandlers(images: ImageService): grpc.UntypedServiceImplementation {
  return {
    ImportImage: (call: grpc.ServerUnaryCall<ImportImageRequest, ImportImageResponse>, cb: grpc.sendUnaryData<ImportImageResponse>) => {
      const run = async (): Promise<ImportImageResponse> => {
        const path = call.request?.path;
        if (typeof path !== 'string' || !path.startsWith('/')) {
          throw new InvalidArgumentError('ImportImage: path must be an absolute path to an image archive');
        }
        const views = await images.importArchive(path);
        return { images: views.map((v) => ({ id: v.id, repoTags: v.repoTags })) };
      };
      run().then(
        (res) => cb(null, res),
        (err: unknown) => {
          log.info({ method: ADMIN_IMPORT_PATH, err: (err as Error).message }, 'rpc failed');
          const { code, details } = failureStatus(err);
          cb({ code, details, name: 'Error', message: details });
        },
      );
    },
  };
}

/** Client side, for `crib image import`. */
export function importImageViaDaemon(address: string, path: string): Promise<ImportImageResponse> {
  const Client = grpc.makeGenericClientConstructor(adminServiceDefinition(), 'Admin');
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
