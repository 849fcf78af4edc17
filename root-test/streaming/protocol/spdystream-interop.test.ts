// Interop with the real moby/spdystream (what kubectl, crictl and kubelet use), through a small
// Go exec client of our own in testdata/, built here in GOPATH mode against Debian's
// golang-github-docker-spdystream-dev. Skips when Go or that package is missing.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SpdyConnection } from '../../../src/streaming/spdy/spdy-connection.js';
import { SUPPORTED_REMOTE_COMMAND_PROTOCOLS } from '../../../src/streaming/protocol/constants.js';
import { RemoteCommandSession } from '../../../src/streaming/protocol/remote-command-session.js';
import { acceptSpdyUpgrade } from '../../../src/streaming/protocol/spdy-upgrade.js';

const run = promisify(execFile);
const GOPATH = '/usr/share/gocode';
const SPDYSTREAM = join(GOPATH, 'src/github.com/moby/spdystream');
const source = fileURLToPath(new URL('./testdata/spdystream-exec-client.go', import.meta.url));

async function goAvailable(): Promise<boolean> {
  if (!existsSync(SPDYSTREAM)) return false;
  try {
    await run('go', ['version']);
    return true;
  } catch {
    return false;
  }
}

const available = await goAvailable();
const BIG = 100 * 1024 * 1024;

describe.skipIf(!available)('interop with moby/spdystream (Go)', () => {
  let dir: string;
  let binary: string;
  let port: number;
  const conns: SpdyConnection[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((_req, res) => res.writeHead(404).end());

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `crib-spdystream-${process.pid}-`));
    binary = join(dir, 'client');
    const env = { ...process.env, GOPATH, GO111MODULE: 'off', GOCACHE: join(dir, 'cache'), GOFLAGS: '', CGO_ENABLED: '0' };
    await run('go', ['build', '-o', binary, source], { env, timeout: 110_000 });

    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      const { connection, protocol } = acceptSpdyUpgrade(req, socket, head, SUPPORTED_REMOTE_COMMAND_PROTOCOLS);
      conns.push(connection);
      const big = new URL(req.url ?? '/', 'http://x').searchParams.get('big') === '1';
      void RemoteCommandSession.accept(connection, protocol, { stdin: true, stdout: true, stderr: true, tty: false })
        .then(async (s) => {
          const input = await new Promise<Buffer>((resolve) => {
            const parts: Buffer[] = [];
            s.stdin!.on('data', (d: Buffer) => parts.push(d));
            s.stdin!.on('end', () => resolve(Buffer.concat(parts)));
          });
          if (big) {
            const block = Buffer.alloc(1024 * 1024, 0x42);
            for (let sent = 0; sent < BIG; sent += block.length) {
              if (!s.stdout!.write(block)) await once(s.stdout!, 'drain');
            }
          } else {
            const text = input.subarray(0, 13).toString();
            const rest = input.subarray(13);
            const fillerOk = rest.every((b) => b === 0x7a);
            s.stdout!.write(`you said: ${text}` + (rest.length ? ` (+${rest.length} filler bytes, ${fillerOk ? 'intact' : 'CORRUPT'})` : ''));
          }
          s.stderr!.write('a warning');
          await s.finish({ exitCode: big ? 0 : 3 });
        }, () => undefined);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  }, 120_000);

  afterAll(async () => {
    for (const c of conns) c.destroy();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function runClient(path: string, stdin: string, filler = 0): Promise<Record<string, unknown>> {
    const { stdout } = await run(binary, [`127.0.0.1:${port}`, path, stdin, String(filler)], { timeout: 50_000, maxBuffer: 1 << 20 });
    return JSON.parse(stdout) as Record<string, unknown>;
  }

  it('runs an exec session with a Go spdystream client: headers, replies, data, FIN, ping, v4 status', async () => {
    const out = await runClient('/exec/abc', 'hello from go');
    expect(out).toMatchObject({
      protocol: 'v4.channel.k8s.io',
      stdout: 'you said: hello from go',
      stderr: 'a warning',
      pingOk: true,
      status: '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3",' +
        '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}',
    });
  });

  it('takes 20 MB of stdin from a Go client, answering with WINDOW_UPDATEs it tolerates', async () => {
    const out = await runClient('/exec/abc', 'hello from go', 20 * 1024 * 1024);
    expect(out.stdout).toBe(`you said: hello from go (+${20 * 1024 * 1024} filler bytes, intact)`);
    expect(out.pingOk).toBe(true);
  });

  it('streams 100 MB of stdout to a Go spdystream client without stalling', async () => {
    const start = Date.now();
    const out = await runClient('/exec/abc?big=1', 'x');
    const seconds = (Date.now() - start) / 1000;
    const expected = createHash('sha256');
    const block = Buffer.alloc(1024 * 1024, 0x42);
    for (let i = 0; i < BIG / block.length; i++) expected.update(block);
    expect(out.stdoutBytes).toBe(BIG);
    expect(out.stdoutSha256).toBe(expected.digest('hex'));
    expect(out.status).toBe('{"metadata":{},"status":"Success"}');
    console.log(`spdystream interop: 100 MiB stdout in ${seconds.toFixed(2)} s`);
  });
});
