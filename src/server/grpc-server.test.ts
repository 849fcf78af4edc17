// crib's gRPC server against a real HTTP/2 client (node:http2, frame by frame as a gRPC client
// sends them) and a real grpc-js client: deadlines, cancels, oversized and compressed messages,
// unknown methods, trailers-only errors, streaming and its bound, shutdown.
import http2 from 'node:http2';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError } from '../errors.js';
import { Status } from '../grpc-status.js';
import { criProto, criServices } from './cri-proto.js';
import { GrpcServer, encodeGrpcMessage, parseGrpcTimeout } from './grpc-server.js';
import { implementService, type RpcContext } from './rpc.js';
import { grpcMessage } from '../../test-support/h2-frames.js';

const MAX = 64 * 1024;
const images = criServices().ImageService;

/** What a raw call got back: the response headers, the message bodies, and the trailers. */
interface RawResult {
  headers: http2.IncomingHttpHeaders;
  messages: Buffer[];
  trailers: http2.IncomingHttpHeaders | undefined;
  rstCode: number;
}

function splitMessages(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; ) {
    const len = data.readUInt32BE(off + 1);
    out.push(data.subarray(off + 5, off + 5 + len));
    off += 5 + len;
  }
  return out;
}

describe('GrpcServer', () => {
  let dir: string;
  let sock: string;
  let server: GrpcServer;
  let listener: Server;
  let session: http2.ClientHttp2Session;
  let client: grpc.Client & Record<string, any>;
  /** Each held ListImages call's signal, as the handler sees it. */
  const held: { signal: AbortSignal; deadlineMs: number | undefined }[] = [];
  let heldArrived: (() => void) | undefined;
  /** How many messages StreamImages sends, and how large each is. */
  let streamCount = 3;
  let streamImageSize = 10;
  let streamDone: Promise<AbortSignal> | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-grpc-server-'));
    sock = join(dir, 'sock');
    server = new GrpcServer({ maxMessageBytes: MAX, maxStreamBufferedBytes: 256 * 1024 });
    server.addService(images, implementService('runtime.v1.ImageService', images, {
      ImageStatus: async (req) => {
        if (req.image?.image === 'missing') throw new NotFoundError('image "missing" 100% not here: naïve');
        return { image: { id: `sha256:${req.image?.image}`, repoTags: [], repoDigests: [], size: '1' }, info: {} };
      },
      ListImages: async (_req, ctx: RpcContext) => {
        held.push({ signal: ctx.signal, deadlineMs: ctx.deadlineMs() });
        heldArrived?.();
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        return { images: [] };
      },
      StreamImages: async (_req, ctx, send) => {
        let release!: (s: AbortSignal) => void;
        streamDone = new Promise((r) => (release = r));
        for (let i = 0; i < streamCount && !ctx.signal.aborted; i++) {
          send({ images: [{ id: `${i}:${'x'.repeat(streamImageSize)}`, repoTags: [], repoDigests: [], size: '1' }] });
          // Let the stream drain (or not) between messages, as an event stream does.
          await new Promise((r) => setImmediate(r));
        }
        release(ctx.signal);
      },
    }));
    listener = createServer({ allowHalfOpen: true }, (c) => server.serveConnection(c));
    await new Promise<void>((resolve) => listener.listen(sock, resolve));
    session = http2.connect('http://localhost', { createConnection: () => connect(sock) });
    session.on('error', () => undefined);
    client = new (criProto().runtime.v1.ImageService)(`unix://${sock}`, grpc.credentials.createInsecure()) as any;
  });
  afterAll(async () => {
    client?.close();
    session?.close();
    server?.forceShutdown();
    listener?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A call as a gRPC client makes it; `body` undefined sends no DATA at all. */
  function raw(path: string, body: Buffer | Buffer[] | undefined, headers: http2.OutgoingHttpHeaders = {}, opts: { end?: boolean; s?: http2.ClientHttp2Session } = {}): { stream: http2.ClientHttp2Stream; result: Promise<RawResult> } {
    const stream = (opts.s ?? session).request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers }, { endStream: body === undefined && opts.end !== false });
    const result = new Promise<RawResult>((resolve, reject) => {
      let resHeaders: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      const data: Buffer[] = [];
      stream.on('response', (h) => (resHeaders = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (d: Buffer) => data.push(d));
      stream.on('error', () => undefined);
      stream.on('close', () => resolve({ headers: resHeaders, messages: splitMessages(Buffer.concat(data)), trailers, rstCode: stream.rstCode ?? 0 }));
      stream.on('aborted', () => undefined);
      void reject;
    });
    if (body !== undefined) {
      for (const b of Array.isArray(body) ? body : [body]) stream.write(b);
      if (opts.end !== false) stream.end();
    }
    return { stream, result };
  }
  const statusReq = (image: string) => grpcMessage(images.ImageStatus.requestSerialize!({ image: { image } }));

  it('answers a unary call: headers, one message, grpc-status 0 in trailers', async () => {
    const { result } = raw(images.ImageStatus.path, statusReq('abc'));
    const r = await result;
    expect(r.headers[':status']).toBe(200);
    expect(r.headers['content-type']).toBe('application/grpc');
    expect(r.messages).toHaveLength(1);
    expect((images.ImageStatus.responseDeserialize!(r.messages[0]!) as any).image.id).toBe('sha256:abc');
    expect(r.trailers?.['grpc-status']).toBe('0');
  });

  it('answers an error before any message trailers-only, its message percent-encoded', async () => {
    const r = await raw(images.ImageStatus.path, statusReq('missing')).result;
    expect(r.headers[':status']).toBe(200);
    expect(r.headers['grpc-status']).toBe(String(Status.NOT_FOUND));
    expect(r.headers['grpc-message']).toBe('image "missing" 100%25 not here: na%C3%AFve');
    expect(r.messages).toHaveLength(0);
    expect(r.trailers).toBeUndefined();
    // grpc-js decodes it back.
    const err = await new Promise<grpc.ServiceError>((resolve) => client.ImageStatus({ image: { image: 'missing' } }, resolve));
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toBe('image "missing" 100% not here: naïve');
  });

  it('answers an unknown method, or a known one of an unknown service, UNIMPLEMENTED', async () => {
    for (const path of ['/runtime.v1.ImageService/NoSuchMethod', '/no.Such/Service']) {
      const r = await raw(path, grpcMessage(Buffer.alloc(0))).result;
      expect(r.headers['grpc-status']).toBe(String(Status.UNIMPLEMENTED));
      expect(r.headers['grpc-message']).toContain(path);
    }
  });

  it('refuses another HTTP method with 405 and another content type with 415', async () => {
    const get = await raw(images.ImageStatus.path, undefined, { ':method': 'GET' }).result;
    expect(get.headers[':status']).toBe(405);
    expect(get.headers['grpc-status']).toBe(String(Status.INTERNAL));
    const json = await raw(images.ImageStatus.path, statusReq('a'), { 'content-type': 'application/json' }).result;
    expect(json.headers[':status']).toBe(415);
    expect(json.headers['grpc-status']).toBe(String(Status.INVALID_ARGUMENT));
    // application/grpc+proto is gRPC too.
    const proto = await raw(images.ImageStatus.path, statusReq('a'), { 'content-type': 'application/grpc+proto' }).result;
    expect(proto.trailers?.['grpc-status']).toBe('0');
  });

  it('refuses a compressed message and an unsupported grpc-encoding; accepts identity', async () => {
    const flagged = await raw(images.ImageStatus.path, grpcMessage(Buffer.from([0x0a, 0x00]), 1)).result;
    expect(flagged.headers['grpc-status']).toBe(String(Status.INTERNAL));
    expect(flagged.headers['grpc-message']).toContain('compressed flag');
    const gzip = await raw(images.ImageStatus.path, statusReq('a'), { 'grpc-encoding': 'gzip' }).result;
    expect(gzip.headers['grpc-status']).toBe(String(Status.UNIMPLEMENTED));
    expect(gzip.headers['grpc-message']).toContain('gzip');
    const identity = await raw(images.ImageStatus.path, statusReq('a'), { 'grpc-encoding': 'identity' }).result;
    expect(identity.trailers?.['grpc-status']).toBe('0');
  });

  it('refuses an oversized request from its prefix, before the body is sent, and stops reading it', async () => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(MAX + 1, 1);
    // Only the prefix is sent and the stream is left open: the answer cannot wait for the body.
    const { result } = raw(images.ImageStatus.path, prefix, {}, { end: false });
    const r = await result;
    expect(r.headers['grpc-status']).toBe(String(Status.RESOURCE_EXHAUSTED));
    expect(r.headers['grpc-message']).toBe(`Received message larger than max (${MAX + 1} vs. ${MAX})`);
    // A message at the bound is read (and fails to decode as what it is not).
    const atMax = await raw(images.ImageStatus.path, grpcMessage(Buffer.alloc(MAX, 0xff))).result;
    expect(atMax.headers['grpc-message']).toContain('does not decode');
  });

  it('takes exactly one request message', async () => {
    const none = await raw(images.ImageStatus.path, undefined).result;
    expect(none.headers['grpc-status']).toBe(String(Status.INTERNAL));
    expect(none.headers['grpc-message']).toContain('sent none');
    const two = await raw(images.ImageStatus.path, [statusReq('a'), statusReq('b')]).result;
    expect(two.headers['grpc-status']).toBe(String(Status.INTERNAL));
    expect(two.headers['grpc-message']).toContain('sent more');
    const cut = await raw(images.ImageStatus.path, statusReq('abc').subarray(0, 7)).result;
    expect(cut.headers['grpc-message']).toContain('inside a message');
    // A message split over many DATA frames is put back together.
    const msg = statusReq('split');
    const split = await raw(images.ImageStatus.path, [...msg].map((b) => Buffer.from([b]))).result;
    expect((images.ImageStatus.responseDeserialize!(split.messages[0]!) as any).image.id).toBe('sha256:split');
  });

  it('parses grpc-timeout in every unit, and refuses a malformed one', async () => {
    expect([parseGrpcTimeout('2H'), parseGrpcTimeout('3M'), parseGrpcTimeout('4S'), parseGrpcTimeout('5m'), parseGrpcTimeout('6000u'), parseGrpcTimeout('7000000n')])
      .toEqual([7_200_000, 180_000, 4000, 5, 6, 7]);
    expect([parseGrpcTimeout('123456789S'), parseGrpcTimeout('1s'), parseGrpcTimeout('-1S'), parseGrpcTimeout('S')]).toEqual([undefined, undefined, undefined, undefined]);
    const r = await raw(images.ImageStatus.path, statusReq('a'), { 'grpc-timeout': '1x' }).result;
    expect(r.headers['grpc-status']).toBe(String(Status.INTERNAL));
    expect(r.headers['grpc-message']).toContain('grpc-timeout');
  });

  it('ends a call whose deadline passes with DEADLINE_EXCEEDED and aborts its handler', async () => {
    held.length = 0;
    const started = Date.now();
    const r = await raw(images.ListImages.path, grpcMessage(Buffer.alloc(0)), { 'grpc-timeout': '300m' }).result;
    expect(r.headers['grpc-status']).toBe(String(Status.DEADLINE_EXCEEDED));
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(held).toHaveLength(1);
    expect(held[0]!.deadlineMs).toBeGreaterThan(200);
    expect(held[0]!.deadlineMs).toBeLessThanOrEqual(300);
    expect(held[0]!.signal.aborted).toBe(true);
    expect((held[0]!.signal.reason as Error).message).toBe("the call's deadline passed");
    // A deadline past setTimeout's range is kept, with no timer (a timer would fire at once).
    held.length = 0;
    const arrived = new Promise<void>((r2) => (heldArrived = r2));
    const { stream, result } = raw(images.ListImages.path, grpcMessage(Buffer.alloc(0)), { 'grpc-timeout': '99999999H' });
    await arrived;
    await new Promise((r2) => setTimeout(r2, 50));
    expect(held[0]!.signal.aborted).toBe(false);
    expect(held[0]!.deadlineMs).toBeGreaterThan(2 ** 31);
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await result;
  });

  it('aborts the handler when the client resets the stream', async () => {
    held.length = 0;
    const arrived = new Promise<void>((r) => (heldArrived = r));
    const { stream, result } = raw(images.ListImages.path, grpcMessage(Buffer.alloc(0)));
    await arrived;
    expect(held[0]!.signal.aborted).toBe(false);
    expect(held[0]!.deadlineMs).toBeUndefined();
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await result;
    await new Promise<void>((r) => (held[0]!.signal.aborted ? r() : held[0]!.signal.addEventListener('abort', () => r(), { once: true })));
    expect((held[0]!.signal.reason as Error).message).toBe('the client cancelled the call');
  });

  it('streams messages then OK trailers, to a raw client and to grpc-js', async () => {
    streamCount = 3;
    streamImageSize = 10;
    const r = await raw(images.StreamImages.path, grpcMessage(Buffer.alloc(0))).result;
    expect(r.messages.map((m) => (images.StreamImages.responseDeserialize!(m) as any).images[0].id.split(':')[0])).toEqual(['0', '1', '2']);
    expect(r.trailers?.['grpc-status']).toBe('0');
    const viaGrpcJs = await new Promise<unknown[]>((resolve, reject) => {
      const items: unknown[] = [];
      const s = client.StreamImages({});
      s.on('data', (d: unknown) => items.push(d));
      s.on('error', reject);
      s.on('end', () => resolve(items));
    });
    expect(viaGrpcJs).toHaveLength(3);
  });

  it('cuts a stream whose client stops reading once its bound is buffered, and aborts the handler', async () => {
    // A client whose window is 64 KiB and who never reads: 1000 messages of 10 KiB cannot go.
    streamCount = 1000;
    streamImageSize = 10 * 1024;
    streamDone = undefined;
    const { stream, result } = raw(images.StreamImages.path, grpcMessage(Buffer.alloc(0)));
    stream.pause();
    stream.removeAllListeners('data');
    const signal = await new Promise<AbortSignal>((resolve) => {
      const wait = (): void => void (streamDone ? streamDone.then(resolve) : setTimeout(wait, 10));
      wait();
    });
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('the client stopped reading the stream');
    stream.resume();
    const r = await result;
    expect(r.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    streamDone = undefined;
  });

  it('bounds what it answers: a response over the message limit is RESOURCE_EXHAUSTED', async () => {
    streamCount = 2;
    streamImageSize = MAX;
    streamDone = undefined;
    const r = await raw(images.StreamImages.path, grpcMessage(Buffer.alloc(0))).result;
    expect(r.headers['grpc-status']).toBe(String(Status.RESOURCE_EXHAUSTED));
    expect(r.headers['grpc-message']).toMatch(/^Sent message larger than max \(\d+ vs\. 65536\)$/);
    // The handler is told to stop: nothing more it sends can go.
    const signal = await streamDone!;
    expect((signal.reason as Error).message).toBe('a response could not be sent (see the daemon log)');
    streamDone = undefined;
  });

  it('encodes grpc-message as the protocol says', () => {
    expect(encodeGrpcMessage('plain text, ok')).toBe('plain text, ok');
    expect(encodeGrpcMessage('50% \n€')).toBe('50%25 %0A%E2%82%AC');
  });

  it('shuts down gracefully: a call in flight finishes, then the connection closes', async () => {
    const s2 = http2.connect('http://localhost', { createConnection: () => connect(sock) });
    s2.on('error', () => undefined);
    held.length = 0;
    const arrived = new Promise<void>((r) => (heldArrived = r));
    const { result } = raw(images.ListImages.path, grpcMessage(Buffer.alloc(0)), { 'grpc-timeout': '500m' }, { s: s2 });
    await arrived;
    let shut = false;
    const goaway = new Promise<void>((r) => s2.once('goaway', () => r()));
    server.tryShutdown(() => (shut = true));
    await goaway;
    expect(shut).toBe(false);
    // The call in flight still gets its answer (here its deadline) after the GOAWAY.
    const r = await result;
    expect(r.headers['grpc-status']).toBe(String(Status.DEADLINE_EXCEEDED));
    await new Promise((r2) => setTimeout(r2, 100));
    expect(shut).toBe(true);
  });
});
