// The attach-socket client (and the runtime's unix connect) against a real unix socket speaking
// the monitor's framing, at a path longer than sun_path allows.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectUnix } from '../../runtime/unix-connect.js';
import { pumpAttachInput, pumpAttachOutput } from './attach-socket.js';

function frame(stream: number, data: string | Buffer): Buffer {
  const payload = Buffer.from(data);
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

function collect(): { w: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  return { w: new Writable({ write(c, _e, cb) { chunks.push(c); cb(); } }), text: () => Buffer.concat(chunks).toString() };
}

describe('attach socket client', () => {
  let dir: string;
  let server: Server;
  let path: string;
  let accepted: Promise<Socket>;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), `crib-attach-${process.pid}-`));
    const deep = join(dir, 'a'.repeat(60), 'b'.repeat(60));
    await mkdir(deep, { recursive: true });
    path = join(deep, 'attach.sock');
    expect(path.length).toBeGreaterThan(108);
    server = createServer({ allowHalfOpen: true });
    accepted = new Promise((resolve) => server.once('connection', resolve));
    // The server binds through a short relative path, as the monitor does through /proc/self/fd.
    const cwd = process.cwd();
    process.chdir(deep);
    try {
      await new Promise<void>((resolve) => server.listen('attach.sock', resolve));
    } finally {
      process.chdir(cwd);
    }
  });
  afterEach(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('reports an output that ended before it was pumped (an exec with no output, over before its sync line came)', async () => {
    const sock = await connectUnix(path);
    const peer = await accepted;
    const peerClosed = new Promise((r) => peer.once('close', r));
    peer.resume();
    peer.end();
    // Nothing listens yet, and the socket's 'end' has been and gone (it was read: no data).
    await expect.poll(() => sock.readableEnded, { timeout: 5000 }).toBe(true);
    const out = collect();
    try {
      const pumped = pumpAttachOutput(sock, out.w, undefined);
      await expect(Promise.race([pumped, new Promise((r) => setTimeout(() => r('hung'), 2000))])).resolves.toBe('ended');
      // Our side is ended too, so the monitor can close.
      await peerClosed;
      expect(out.text()).toBe('');
    } finally {
      sock.destroy();
    }
  });

  it('connects through a long path, splits frames split across reads, and forwards input with half-close', async () => {
    const sock = await connectUnix(path);
    const peer = await accepted;
    const out = collect();
    const err = collect();
    const done = pumpAttachOutput(sock, out.w, err.w);
    const bytes = Buffer.concat([frame(1, 'hello '), frame(2, 'oops\n'), frame(1, 'world\n'), frame(9, 'ignored')]);
    // One byte at a time: the demuxer must not assume a frame per read.
    for (const b of bytes) {
      peer.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    const input = new PassThrough();
    pumpAttachInput(input, sock);
    const got: Buffer[] = [];
    peer.on('data', (c: Buffer) => got.push(c));
    const peerEnded = new Promise((r) => peer.once('end', r));
    input.end('typed\n');
    await peerEnded;
    expect(Buffer.concat(got).toString()).toBe('typed\n');
    peer.end();
    await done;
    expect(out.text()).toBe('hello world\n');
    expect(err.text()).toBe('oops\n');
  });

  it('reports an unreachable socket as UNAVAILABLE naming the path', async () => {
    await expect(connectUnix(join(dir, 'missing', 'attach.sock'))).rejects.toMatchObject({ grpcCode: 14 });
    await expect(connectUnix(join(dir, 'nothing.sock'))).rejects.toThrow(/nothing\.sock/);
  });
});
