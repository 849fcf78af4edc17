// Client side of crib's admin service (src/server/admin-service.ts): image import/export and the pull
// that streams its progress. Same socket as the CRI, JSON messages.
import * as grpc from '@grpc/grpc-js';
import {
  adminServiceDefinition,
  type ExportImageRequest,
  type ExportImageResponse,
  type ImportImageRequest,
  type ImportImageResponse,
  type StreamPullRequest,
  type StreamPullResponse,
} from '../server/admin-service.js';
import { grpcTarget } from './cri-client.js';

interface AdminStub {
  ImportImage(req: ImportImageRequest, cb: (err: grpc.ServiceError | null, res: ImportImageResponse) => void): void;
  ExportImage(req: ExportImageRequest, cb: (err: grpc.ServiceError | null, res: ExportImageResponse) => void): void;
  StreamPull(req: StreamPullRequest): grpc.ClientReadableStream<StreamPullResponse>;
  close(): void;
}

function adminStub(address: string): AdminStub {
  const Client = grpc.makeGenericClientConstructor(adminServiceDefinition, 'Admin');
  return new Client(grpcTarget(address), grpc.credentials.createInsecure()) as unknown as AdminStub;
}

/** Load an image archive (a path on the daemon's host) through the daemon. */
export function importImageViaDaemon(address: string, path: string): Promise<ImportImageResponse> {
  const client = adminStub(address);
  return new Promise((resolve, reject) =>
    client.ImportImage({ path }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    }),
  );
}

/** Write an image as an OCI layout tar at `path` (on the daemon's host; a new file). */
export function exportImageViaDaemon(address: string, image: string, path: string): Promise<ExportImageResponse> {
  const client = adminStub(address);
  return new Promise((resolve, reject) =>
    client.ExportImage({ image, path }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    }),
  );
}

/** Pull an image, calling onProgress with each snapshot; resolves with the image id. */
export function pullWithProgress(
  address: string,
  req: StreamPullRequest,
  onProgress: (p: StreamPullResponse) => void,
): Promise<string> {
  const client = adminStub(address);
  return new Promise((resolve, reject) => {
    let imageRef: string | undefined;
    const stream = client.StreamPull(req);
    stream.on('data', (msg: StreamPullResponse) => {
      if (msg.imageRef) imageRef = msg.imageRef;
      onProgress(msg);
    });
    stream.on('error', (err) => {
      client.close();
      reject(err);
    });
    stream.on('end', () => {
      client.close();
      if (imageRef) resolve(imageRef);
      else reject(new Error('the daemon ended the pull without naming the image it pulled'));
    });
  });
}
