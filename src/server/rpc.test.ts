// The RPC wrapper over a real gRPC server and client: a status message quoting a huge input is
// cut before it reaches the client, on unary and streaming calls alike.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { criProto } from './cri-proto.js';
import { implementService } from './rpc.js';

describe('implementService', () => {
  let dir: string;
  let server: grpc.Server;
  let client: grpc.Client & Record<string, any>;
  const huge = 'x'.repeat(1024 * 1024);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-rpc-'));
    const v1 = criProto().runtime.v1;
    server = new grpc.Server();
    server.addService(v1.ImageService.service, implementService('runtime.v1.ImageService', v1.ImageService.service, {
      PullImage: async (req) => {
        throw new InvalidArgumentError(`PullImage: image "${req.image?.image}" is not a valid reference`);
      },
      StreamImages: async () => {
        throw new InvalidArgumentError(`StreamImages: ${huge}`);
      },
    }));
    const address = `unix://${join(dir, 'sock')}`;
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    client = new v1.ImageService(address, grpc.credentials.createInsecure()) as any;
  });
  afterAll(async () => {
    client?.close();
    server?.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it('cuts a unary status message that echoes a 1 MiB input, keeping its head and the size', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve) =>
      client.PullImage({ image: { image: huge } }, (e: grpc.ServiceError) => resolve(e)));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(Buffer.byteLength(err.details)).toBeLessThan(1100);
    expect(err.details).toMatch(/^PullImage: image "x+… \(1048620 bytes\)$/);
  });

  it('cuts a streaming call\'s status message the same way', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      const s = client.StreamImages({});
      s.on('data', () => undefined);
      s.on('error', resolve);
    });
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^StreamImages: x+… \(1048590 bytes\)$/);
  });
});
