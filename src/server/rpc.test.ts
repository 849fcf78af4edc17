// The RPC wrapper over crib's real gRPC server and a grpc-js client: a status message quoting a
// huge input is cut before it reaches the client, on unary and streaming calls alike.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { criProto, criServices } from './cri-proto.js';
import { GrpcServer } from './grpc-server.js';
import { implementService, type RpcContext, type RpcObserver } from './rpc.js';

describe('implementService', () => {
  let dir: string;
  let server: GrpcServer;
  let listener: Server | undefined;
  let client: grpc.Client & Record<string, any>;
  const huge = 'x'.repeat(1024 * 1024);
  /** The signal of each ImageStatus call, and a way to hold a ListImages call until cancelled. */
  const statusSignals: AbortSignal[] = [];
  let heldSignal: ((signal: AbortSignal) => void) | undefined;
  /** What the observer was told. */
  const told: string[] = [];
  const observer: RpcObserver = {
    unaryStarted: (method) => told.push(`started ${method}`),
    ended: (method, code, seconds, unary) => {
      expect(seconds).toBeGreaterThanOrEqual(0);
      told.push(`ended ${method} ${grpc.status[code]} ${unary ? 'unary' : 'streaming'}`);
    },
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-rpc-'));
    const v1 = criProto().runtime.v1;
    const images = criServices().ImageService;
    server = new GrpcServer({ maxMessageBytes: 16 * 1024 * 1024 });
    server.addService(images, implementService('runtime.v1.ImageService', images, {
      PullImage: async (req) => {
        throw new InvalidArgumentError(`PullImage: image "${req.image?.image}" is not a valid reference`);
      },
      StreamImages: async () => {
        throw new InvalidArgumentError(`StreamImages: ${huge}`);
      },
      ImageStatus: async (_req, ctx: RpcContext) => {
        statusSignals.push(ctx.signal);
        return { image: null, info: {} };
      },
      ListImages: async (_req, ctx: RpcContext) => {
        heldSignal?.(ctx.signal);
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        return { images: [] };
      },
    }, observer));
    const address = `unix://${join(dir, 'sock')}`;
    const l = createServer({ allowHalfOpen: true }, (c) => server.serveConnection(c));
    listener = l;
    await new Promise<void>((resolve) => l.listen(join(dir, 'sock'), resolve));
    client = new v1.ImageService(address, grpc.credentials.createInsecure()) as any;
  });
  afterAll(async () => {
    client?.close();
    server?.forceShutdown();
    listener?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('tells its observer when a unary call starts and ends, and a streaming call only when it ends', async () => {
    told.length = 0;
    await new Promise((resolve) => client.ImageStatus({ image: { image: 'x' } }, resolve));
    await new Promise((resolve) => client.PullImage({ image: { image: 'y' } }, resolve));
    await new Promise((resolve) => {
      const s = client.StreamImages({});
      s.on('data', () => undefined);
      s.on('error', resolve);
    });
    expect(told).toEqual([
      'started runtime.v1.ImageService/ImageStatus',
      'ended runtime.v1.ImageService/ImageStatus OK unary',
      'started runtime.v1.ImageService/PullImage',
      'ended runtime.v1.ImageService/PullImage INVALID_ARGUMENT unary',
      'ended runtime.v1.ImageService/StreamImages INVALID_ARGUMENT streaming',
    ]);
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

  it('aborts a handler\'s signal when the client cancels the call', async () => {
    const signal = new Promise<AbortSignal>((resolve) => (heldSignal = resolve));
    const call = client.ListImages({}, () => undefined);
    const held = await signal;
    expect(held.aborted).toBe(false);
    call.cancel();
    await new Promise((resolve) => held.addEventListener('abort', resolve, { once: true }));
    expect((held.reason as Error).message).toBe('the client cancelled the call');
  });

  it('does not abort the signal of a call that has answered (the stream closes after every call)', async () => {
    statusSignals.length = 0;
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => client.ImageStatus({ image: { image: 'x' } }, (e: Error | null) => (e ? reject(e) : resolve())));
    }
    // The server sees each call's stream close after answering it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(statusSignals).toHaveLength(3);
    expect(statusSignals.map((s) => s.aborted)).toEqual([false, false, false]);
  });
});
