// CRI clients built before Kubernetes 1.31 (kubelet, crictl, critest) send the socket path as
// the HTTP/2 :authority. Node's HTTP/2 rejects that header outright; crib must still answer.
import { connect as h2connect, constants } from 'node:http2';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from '../test-support/daemon.js';

function rawVersionCall(socket: string, authority: string): Promise<{ status?: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const client = h2connect('http://localhost', { createConnection: () => connect(socket) });
    client.on('error', reject);
    const req = client.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: '/runtime.v1.RuntimeService/Version',
      [constants.HTTP2_HEADER_AUTHORITY]: authority,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let bytes = 0;
    let status: string | undefined;
    req.on('data', (d: Buffer) => (bytes += d.length));
    req.on('trailers', (t) => (status = String(t['grpc-status'])));
    req.on('error', reject);
    req.on('close', () => {
      client.close();
      resolve({ status, bytes });
    });
    // An empty VersionRequest: uncompressed flag + zero length.
    req.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

describe('HTTP/2 :authority from older CRI clients', () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon();
  });
  afterAll(async () => {
    await d?.cleanup();
  });

  it('answers a call whose :authority is the socket path, as kubelet/crictl <= 1.30 send it', async () => {
    const res = await rawVersionCall(d.socket, d.socket);
    expect(res.status).toBe('0');
    expect(res.bytes).toBeGreaterThan(5);
  });

  it('still answers calls with a normal :authority, many on one connection', async () => {
    for (const authority of ['localhost', d.socket, 'localhost']) {
      expect((await rawVersionCall(d.socket, authority)).status).toBe('0');
    }
  });
});
