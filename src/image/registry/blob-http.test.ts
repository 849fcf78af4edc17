import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeReadBuffers } from '../../sys/read-buffers.js';
import { isSoleView } from '../../sys/sole-view.js';
import { getBlob } from './blob-http.js';
import { BAD_RESPONSE, BODY_TIMEOUT, HEADERS_TIMEOUT } from './http-failures.js';
import type { RegistryRequest } from './registry-http.js';

const request = (over: Partial<RegistryRequest> = {}): RegistryRequest =>
  ({ method: 'GET', insecure: false, headersTimeoutMs: 5000, bodyTimeoutMs: 0, blob: true, ...over });

/** A server that records each request's bytes and answers with `answer(socket)`. */
async function serve(answer: (s: Socket, req: string) => unknown, tls?: { key: Buffer; cert: Buffer }): Promise<{ url: string; requests: string[]; server: Server }> {
  const requests: string[] = [];
  const onConnection = (s: Socket) => {
    let req = '';
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      req += d.toString('latin1');
      if (!req.includes('\r\n\r\n')) return;
      requests.push(req);
      answer(s, req);
    });
  };
  const server = tls ? createTlsServer(tls, onConnection) : createServer(onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, requests, server };
}

async function readAll(body: NodeJS.ReadableStream): Promise<{ bytes: Buffer; chunks: Buffer[] }> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return { bytes: Buffer.concat(chunks), chunks };
}

const blob = Buffer.from(Array.from({ length: 3 << 20 }, (_, i) => (i * 7) % 256));

describe('getBlob', () => {
  const servers: Server[] = [];
  let tlsKeys: { key: Buffer; cert: Buffer };
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'crib-blob-http-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    tlsKeys = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });
  const track = <T extends { server: Server }>(s: T): T => {
    servers.push(s.server);
    return s;
  };

  it('sends one GET on a connection it closes, and hands the body on as the socket read it', async () => {
    const srv = track(await serve((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\nDocker-Content-Digest: sha256:x\r\n\r\n`);
      s.end(blob);
    }));
    const res = await getBlob(new URL(`${srv.url}/v2/a/blobs/sha256:x?ns=docker.io`), request({ headers: { authorization: 'Bearer t', range: 'bytes=0-', 'x-latin1': 'caf\xe9' } }));
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-content-digest']).toBe('sha256:x');
    const { bytes, chunks } = await readAll(res.body);
    expect(bytes.equals(blob)).toBe(true);
    // Each chunk is the one view of a buffer of its own: the unpack pool can move it, uncopied.
    expect(chunks.every((c) => isSoleView(c))).toBe(true);
    expect(new Set(chunks.map((c) => c.buffer)).size).toBe(chunks.length);
    const [req] = srv.requests;
    expect(req!.split('\r\n').slice(0, 2)).toEqual(['GET /v2/a/blobs/sha256:x?ns=docker.io HTTP/1.1', `host: ${new URL(srv.url).host}`]);
    expect(req).toContain('authorization: Bearer t\r\n');
    expect(req).toContain('range: bytes=0-\r\n');
    expect(req).toContain('x-latin1: caf\xe9\r\n');
    expect(req!.endsWith('connection: close\r\n\r\n')).toBe(true);
  });

  it('copies out a small read, reading the next one into the same buffer', async () => {
    const srv = track(await serve(async (s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n`);
      for (let off = 0; off < 200_000; off += 1000) {
        s.write(blob.subarray(off, off + 1000));
        await sleep(1);
      }
      s.end();
    }));
    const res = await getBlob(new URL(`${srv.url}/b`), request());
    const { bytes, chunks } = await readAll(res.body);
    expect(bytes.equals(blob.subarray(0, 200_000))).toBe(true);
    expect(chunks.length).toBeGreaterThan(20);
    expect(chunks.every((c) => isSoleView(c))).toBe(true);
  });

  it('reads a body the socket holds plenty of in growing buffers, and in smaller ones once it trickles', async () => {
    const big = Buffer.concat([blob, blob, blob]);
    let trickle: () => void = () => undefined;
    const slow = new Promise<void>((r) => (trickle = r));
    const srv = track(await serve(async (s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length + 20_000}\r\n\r\n`);
      s.write(big);
      await slow;
      for (let off = 0; off < 20_000; off += 1000) {
        s.write(blob.subarray(off, off + 1000));
        await sleep(2);
      }
      s.end();
    }));
    const res = await getBlob(new URL(`${srv.url}/c`), request());
    // Not read for a while: the socket's receive queue fills, and each read then fills its buffer.
    await sleep(200);
    const chunks: Buffer[] = [];
    for await (const c of res.body) {
      chunks.push(c as Buffer);
      if (chunks.reduce((n, x) => n + x.length, 0) === big.length) trickle();
    }
    expect(Buffer.concat(chunks).equals(Buffer.concat([big, blob.subarray(0, 20_000)]))).toBe(true);
    const sizes = chunks.map((c) => c.buffer.byteLength);
    expect(Math.max(...sizes)).toBe(1 << 20);
    expect(sizes.indexOf(1 << 20)).toBeGreaterThan(sizes.indexOf(128 << 10));
    // The 1 KB reads made the next buffer smaller each time: the bigger ones went back to be reused.
    expect(freeReadBuffers(1 << 20)).toBeGreaterThanOrEqual(1);
    expect(freeReadBuffers(512 << 10)).toBeGreaterThanOrEqual(1);
    expect(chunks.every((c) => isSoleView(c))).toBe(true);
  });

  it('refuses a header that would split the request, before connecting', async () => {
    const srv = track(await serve((s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n')));
    const err = await getBlob(new URL(`${srv.url}/b`), request({ headers: { authorization: 'Bearer t\r\nx-evil: 1' } })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_INVALID_CHAR', message: expect.stringMatching(/"authorization" has a character HTTP does not allow/) });
    expect(srv.requests).toEqual([]);
  });

  it('fails a body the registry cut short as a connection reset, and a malformed answer as a bad response', async () => {
    const short = track(await serve((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\n\r\n`);
      s.end(blob.subarray(0, 1000));
    }));
    const res = await getBlob(new URL(`${short.url}/b`), request());
    expect(await readAll(res.body).catch((e: unknown) => e)).toMatchObject({ code: 'ECONNRESET' });
    const bad = track(await serve((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n')));
    expect(await getBlob(new URL(`${bad.url}/b`), request()).catch((e: unknown) => e)).toMatchObject({ code: BAD_RESPONSE });
  });

  it('times out a silent registry, a stalled body, and stops on abort', async () => {
    const silent = track(await serve(() => undefined));
    expect(await getBlob(new URL(`${silent.url}/b`), request({ headersTimeoutMs: 200 })).catch((e: unknown) => e)).toMatchObject({ code: HEADERS_TIMEOUT });
    const stalls = track(await serve((s) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\n\r\nabc`)));
    const res = await getBlob(new URL(`${stalls.url}/b`), request({ bodyTimeoutMs: 200 }));
    expect(await readAll(res.body).catch((e: unknown) => e)).toMatchObject({ code: BODY_TIMEOUT });
    const ac = new AbortController();
    const pending = getBlob(new URL(`${silent.url}/b`), request({ signal: ac.signal }));
    ac.abort(new Error('pull cancelled'));
    expect(await pending.catch((e: unknown) => e)).toMatchObject({ name: 'AbortError', message: 'pull cancelled' });
  });

  it('stops reading the socket while the body is not read', async () => {
    const big = Buffer.alloc(64 << 20, 1);
    const srv = track(await serve((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`);
      s.end(big);
    }));
    const res = await getBlob(new URL(`${srv.url}/b`), request());
    await sleep(300);
    // Buffered by the body: about its high-water mark and a read, not the 64 MiB sent.
    expect(res.body.readableLength).toBeLessThan(1 << 20);
    const { bytes } = await readAll(res.body);
    expect(bytes.length).toBe(big.length);
  });

  it('speaks TLS, verifying the certificate unless the host is insecure', async () => {
    const srv = track(await serve((s) => {
      s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${(blob.length).toString(16)}\r\n`);
      s.write(blob);
      s.end('\r\n0\r\n\r\n');
    }, tlsKeys));
    const res = await getBlob(new URL(`${srv.url}/b`), request({ insecure: true }));
    expect((await readAll(res.body)).bytes.equals(blob)).toBe(true);
    const err = await getBlob(new URL(`${srv.url}/b`), request({ insecure: false })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  });
});
