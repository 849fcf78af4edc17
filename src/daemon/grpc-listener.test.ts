// The listener in front of the gRPC server, against real clients on a real socket: every kind
// of client is answered, whatever it sends as :authority and whenever it acknowledges SETTINGS.
import http2 from 'node:http2';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criProto, criServices } from '../server/cri-proto.js';
import { GrpcServer } from '../server/grpc-server.js';
import { implementService } from '../server/rpc.js';
import { H2_PREFACE, grpcMessage, grpcRequestHeaders, h2Frame } from '../../test-support/h2-frames.js';
import { bindGrpc, type GrpcListener } from './grpc-listener.js';

const images = criServices().ImageService;
const STATUS_PATH = images.ImageStatus.path;

/** An ImageStatus call on `streamId`, as raw frames: HEADERS (valid :authority), then its DATA. */
function imageStatusCall(streamId: number, image: string): Buffer {
  return Buffer.concat([
    h2Frame(0x1, 0x4, streamId, grpcRequestHeaders(STATUS_PATH)),
    h2Frame(0x0, 0x1, streamId, grpcMessage(images.ImageStatus.requestSerialize!({ image: { image } }))),
  ]);
}

/** A client's opening: the preface, its (empty) SETTINGS and a first call on stream 1. */
function openingWithCall(image: string): Buffer {
  return Buffer.concat([H2_PREFACE, h2Frame(0x4, 0, 0, Buffer.alloc(0)), imageStatusCall(1, image)]);
}

/** Frames read off a raw connection, as they arrive. */
function frameReader(s: Socket): { frames: { type: number; flags: number; streamId: number }[]; until: (pred: () => boolean) => Promise<void> } {
  const frames: { type: number; flags: number; streamId: number }[] = [];
  let buf = Buffer.alloc(0);
  const waiters: (() => void)[] = [];
  s.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const len = buf.readUIntBE(0, 3);
      frames.push({ type: buf[3]!, flags: buf[4]!, streamId: buf.readUInt32BE(5) & 0x7fffffff });
      buf = buf.subarray(9 + len);
    }
    for (const w of waiters.splice(0)) w();
  });
  const until = async (pred: () => boolean) => {
    while (!pred()) await new Promise<void>((r) => waiters.push(r));
  };
  return { frames, until };
}

describe('gRPC listener', () => {
  let dir: string;
  let sock: string;
  let server: GrpcServer;
  let listener: GrpcListener;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-grpc-listener-'));
    sock = join(dir, 'crib.sock');
    server = new GrpcServer({ maxMessageBytes: 64 * 1024, maxStreamBufferedBytes: 256 * 1024 });
    server.addService(images, implementService('runtime.v1.ImageService', images, {
      ImageStatus: async (req) => ({ image: { id: `sha256:${req.image?.image}`, repoTags: [], repoDigests: [], size: '1' }, info: {} }),
      ListImages: async () => ({ images: [] }),
      StreamImages: async () => undefined,
    }));
    listener = await bindGrpc(server, { address: `unix://${sock}`, socketMode: 0o600 });
  });
  afterAll(async () => {
    server?.forceShutdown();
    await listener?.close();
    await rm(dir, { recursive: true, force: true });
  });
  it('serves a client with a valid :authority, many calls on one connection', async () => {
    const client = new (criProto().runtime.v1.ImageService)(`unix://${sock}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
    try {
      for (let i = 0; i < 20; i++) {
        const res = await new Promise<any>((resolve, reject) => client.ImageStatus({ image: { image: `i${i}` } }, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r))));
        expect(res.image.id).toBe(`sha256:i${i}`);
      }
    } finally {
      client.close();
    }
  });

  it('serves a client sending the socket path as :authority (clients before Kubernetes 1.31), every call on its connection', async () => {
    const session = http2.connect('http://localhost', { createConnection: () => connect(sock) });
    try {
      for (let i = 0; i < 3; i++) {
        const req = session.request({ ':method': 'POST', ':path': STATUS_PATH, ':authority': sock, 'content-type': 'application/grpc', te: 'trailers' });
        const trailers = new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          req.on('trailers', resolve);
          req.on('error', reject);
        });
        req.resume();
        req.end(grpcMessage(images.ImageStatus.requestSerialize!({ image: { image: 'x' } })));
        expect((await trailers)['grpc-status']).toBe('0');
      }
    } finally {
      session.close();
    }
  });

  it('speaks first with a SETTINGS frame, and serves a client that never acknowledges it', async () => {
    const s = connect(sock);
    try {
      const reader = frameReader(s);
      // The client says nothing yet: the server's preface must still come, or a grpc-go client
      // (which waits for it before its first request) would never send one.
      await reader.until(() => reader.frames.length > 0);
      expect(reader.frames[0]).toEqual({ type: 0x4, flags: 0, streamId: 0 });
      s.write(openingWithCall('y'));
      // The response's trailers: a HEADERS frame on stream 1 that ends it.
      await reader.until(() => reader.frames.some((f) => f.type === 0x1 && f.streamId === 1 && f.flags & 0x1));
    } finally {
      s.destroy();
    }
  });

  it('serves a client that sends its first request before acknowledging, and after it does', async () => {
    const s = connect(sock);
    try {
      const reader = frameReader(s);
      s.write(openingWithCall('z'));
      await reader.until(() => reader.frames.some((f) => f.type === 0x1 && f.streamId === 1 && f.flags & 0x1));
      // The acknowledgement, late, and a second call: the connection stays up and it is answered.
      s.write(h2Frame(0x4, 0x1, 0, Buffer.alloc(0)));
      s.write(imageStatusCall(3, 'w'));
      await reader.until(() => reader.frames.some((f) => f.type === 0x1 && f.streamId === 3 && f.flags & 0x1));
      expect(reader.frames.some((f) => f.type === 0x7)).toBe(false);
    } finally {
      s.destroy();
    }
  });

  it('serves at most maxConnections connections at once: one over is closed unanswered, and a freed place is taken again', async () => {
    const path = join(dir, 'bounded.sock');
    const bounded = await bindGrpc(server, { address: `unix://${path}`, socketMode: 0o600, maxConnections: 2 });
    const open: Socket[] = [];
    try {
      const served = async () => {
        const s = connect(path);
        s.on('error', () => undefined);
        open.push(s);
        const reader = frameReader(s);
        const closed = new Promise<'closed'>((resolve) => s.on('close', () => resolve('closed')));
        const answered = reader.until(() => reader.frames.some((f) => f.type === 0x1 && f.streamId === 1 && f.flags & 0x1)).then(() => 'answered' as const);
        s.write(openingWithCall('bounded'));
        return { s, reader, outcome: await Promise.race([answered, closed]) };
      };
      const first = await served();
      const second = await served();
      expect([first.outcome, second.outcome]).toEqual(['answered', 'answered']);
      expect((await served()).outcome).toBe('closed');
      // The two it serves are still served.
      second.s.write(imageStatusCall(3, 'again'));
      await second.reader.until(() => second.reader.frames.some((f) => f.type === 0x1 && f.streamId === 3 && f.flags & 0x1));
      first.s.destroy();
      // Its place is free once the server has seen it close.
      let again: Awaited<ReturnType<typeof served>> | undefined;
      for (let i = 0; i < 50 && again?.outcome !== 'answered'; i++) {
        await new Promise((r) => setTimeout(r, 20));
        again = await served();
      }
      expect(again?.outcome).toBe('answered');
    } finally {
      for (const s of open) s.destroy();
      await bounded.close();
    }
  });

  it('stops accepting when closed; the server\'s shutdown then ends an idle connection with GOAWAY', async () => {
    const other = new GrpcServer({ maxMessageBytes: 1024 });
    const path = join(dir, 'second.sock');
    const second = await bindGrpc(other, { address: `unix://${path}`, socketMode: 0o600 });
    const s = connect(path);
    const ended = new Promise<void>((resolve) => s.on('close', () => resolve()));
    s.on('error', () => undefined);
    const reader = frameReader(s);
    await reader.until(() => reader.frames.length > 0);
    // Closed once its connections have ended too, as net.Server does.
    const closed = second.close();
    await expect(new Promise((resolve, reject) => connect(path).on('connect', resolve).on('error', reject))).rejects.toThrow(/ENOENT|ECONNREFUSED/);
    await new Promise<void>((resolve) => other.tryShutdown(resolve));
    await ended;
    await closed;
    expect(reader.frames.some((f) => f.type === 0x7)).toBe(true);
  });
});
