import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { DeadlineExceededError } from '../../errors.js';
import type { SpdyConnection } from '../spdy/spdy-connection.js';
import {
  REMOTE_COMMAND_V1,
  REMOTE_COMMAND_V2,
  REMOTE_COMMAND_V3,
  REMOTE_COMMAND_V4,
  SUPPORTED_REMOTE_COMMAND_PROTOCOLS,
} from './constants.js';
import { RemoteCommandSession, normalizeRemoteCommandOptions, type RemoteCommandOptions } from './remote-command-session.js';
import type { TerminalSize } from './resize-decoder.js';
import { UpgradeRefusedError } from './negotiate.js';
import { acceptSpdyUpgrade } from './spdy-upgrade.js';
import {
  UpgradeFailedError,
  openRemoteCommandStreams,
  readAll,
  spdyUpgrade,
  type SpdyClientSession,
} from '../../../test-support/spdy-client.js';

type Scenario = (session: RemoteCommandSession) => Promise<void> | void;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/**
 * A streaming server the way crib's will be: upgrade, negotiate, accept the remotecommand
 * session with the options from the query string, then run the test's "command".
 */
async function startExecServer(scenario: Scenario, streamCreationTimeoutMs = 10_000): Promise<{ url: (q: string) => string; sessions: Promise<RemoteCommandSession | Error>[] }> {
  const sessions: Promise<RemoteCommandSession | Error>[] = [];
  const sockets = new Set<Socket>();
  const conns: SpdyConnection[] = [];
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let upgraded;
    try {
      upgraded = acceptSpdyUpgrade(req, socket, head, SUPPORTED_REMOTE_COMMAND_PROTOCOLS);
    } catch (err) {
      if (!(err instanceof UpgradeRefusedError)) throw err;
      return;
    }
    conns.push(upgraded.connection);
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const opts: RemoteCommandOptions = {
      stdin: q.get('stdin') === '1', stdout: q.get('stdout') === '1', stderr: q.get('stderr') === '1', tty: q.get('tty') === '1',
    };
    const p = RemoteCommandSession.accept(upgraded.connection, upgraded.protocol, opts, { streamCreationTimeoutMs })
      .then(async (session) => {
        await scenario(session);
        return session;
      }, (err: Error) => err);
    sessions.push(p);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    for (const c of conns) c.destroy();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  const port = (server.address() as AddressInfo).port;
  return { url: (q) => `http://127.0.0.1:${port}/exec/token?${q}`, sessions };
}

async function upgrade(url: string, protocols: readonly string[]): Promise<SpdyClientSession> {
  const s = await spdyUpgrade(url, protocols);
  cleanups.push(() => s.connection.destroy());
  return s;
}

const ALL = SUPPORTED_REMOTE_COMMAND_PROTOCOLS;

describe('SPDY upgrade and subprotocol negotiation', () => {
  it('chooses v4 when the client offers v4..v1, and the client preference otherwise', async () => {
    const { url } = await startExecServer((s) => s.finish({ exitCode: 0 }));
    expect((await upgrade(url('stdout=1'), ALL)).protocol).toBe(REMOTE_COMMAND_V4);
    expect((await upgrade(url('stdout=1'), ['v9.channel.k8s.io', REMOTE_COMMAND_V2, REMOTE_COMMAND_V4])).protocol).toBe(REMOTE_COMMAND_V2);
  });

  it('refuses with 403 and the accepted list when no offered protocol is supported', async () => {
    const { url } = await startExecServer(() => undefined);
    const err = await spdyUpgrade(url('stdout=1'), ['v9.channel.k8s.io']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpgradeFailedError);
    const refused = err as UpgradeFailedError;
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toMatch(/unable to negotiate protocol: client supports \[v9.channel.k8s.io\]/);
    expect(refused.headers['x-accepted-stream-protocol-versions']).toBe(ALL.join(', '));
  });

  it('refuses with 400 when the client names no protocol', async () => {
    const { url } = await startExecServer(() => undefined);
    const err = (await spdyUpgrade(url('stdout=1'), []).catch((e: unknown) => e)) as UpgradeFailedError;
    expect(err.statusCode).toBe(400);
    expect(err.body).toMatch(/X-Stream-Protocol-Version is required/);
  });
});

describe('RemoteCommandSession', () => {
  it('runs a non-tty exec: stdin half-close, stdout, stderr, and the v4 Success status', async () => {
    const { url } = await startExecServer(async (s) => {
      expect(s.stdin && s.stdout && s.stderr).toBeTruthy();
      expect(s.resize).toBeUndefined();
      const input = await readAll(s.stdin!);
      s.stdout!.write(input.toString().toUpperCase());
      s.stderr!.write('to stderr');
      await s.finish({ exitCode: 0 });
    });
    const { connection, protocol } = await upgrade(url('stdin=1&stdout=1&stderr=1'), ALL);
    const streams = await openRemoteCommandStreams(connection, protocol, { stdin: true, stdout: true, stderr: true, tty: false });
    const out = readAll(streams.stdout!);
    const errOut = readAll(streams.stderr!);
    const status = readAll(streams.error);
    streams.stdin!.write('hello ');
    streams.stdin!.end('exec');
    expect((await out).toString()).toBe('HELLO EXEC');
    expect((await errOut).toString()).toBe('to stderr');
    expect((await status).toString()).toBe('{"metadata":{},"status":"Success"}');
    expect(await connection.closed).toBeUndefined();
  });

  it('reports exit code 3 as kubelet does under v4', async () => {
    const { url } = await startExecServer((s) => s.finish({ exitCode: 3 }));
    const { connection, protocol } = await upgrade(url('stdout=1&stderr=1'), ALL);
    const streams = await openRemoteCommandStreams(connection, protocol, { stdin: false, stdout: true, stderr: true, tty: false });
    void readAll(streams.stdout!).catch(() => undefined);
    void readAll(streams.stderr!).catch(() => undefined);
    expect((await readAll(streams.error)).toString()).toBe(
      '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3",' +
        '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}');
  });

  it('writes plain text on the error stream under v3, and nothing on success', async () => {
    let n = 0;
    const { url } = await startExecServer((s) => s.finish({ exitCode: n++ === 0 ? 0 : 3 }));
    for (const expected of ['', 'command terminated with non-zero exit code: exit status 3']) {
      const { connection, protocol } = await upgrade(url('stdout=1'), [REMOTE_COMMAND_V3]);
      expect(protocol).toBe(REMOTE_COMMAND_V3);
      const streams = await openRemoteCommandStreams(connection, protocol, { stdin: false, stdout: true, stderr: false, tty: false });
      void readAll(streams.stdout!).catch(() => undefined);
      expect((await readAll(streams.error)).toString()).toBe(expected);
    }
  });

  it('reports a failure to run the command as an InternalError status', async () => {
    const { url } = await startExecServer((s) => s.finish({ error: new Error('no such container') }));
    const { connection, protocol } = await upgrade(url('stdout=1'), ALL);
    const streams = await openRemoteCommandStreams(connection, protocol, { stdin: false, stdout: true, stderr: false, tty: false });
    void readAll(streams.stdout!).catch(() => undefined);
    expect(JSON.parse((await readAll(streams.error)).toString())).toEqual({
      metadata: {},
      status: 'Failure',
      message: 'Internal error occurred: error executing command in container: no such container',
      reason: 'InternalError',
      details: { causes: [{ message: 'error executing command in container: no such container' }] },
      code: 500,
    });
  });

  it('streams 100 MB of stdout to the client without stalling, then the status', async () => {
    const total = 100 * 1024 * 1024;
    const block = Buffer.alloc(128 * 1024);
    for (let i = 0; i < block.length; i++) block[i] = (i * 13) & 0xff;
    const { url } = await startExecServer(async (s) => {
      for (let sent = 0; sent < total; sent += block.length) {
        if (!s.stdout!.write(block)) await once(s.stdout!, 'drain');
      }
      await s.finish({ exitCode: 0 });
    });
    const { connection, protocol } = await upgrade(url('stdout=1'), ALL);
    const streams = await openRemoteCommandStreams(connection, protocol, { stdin: false, stdout: true, stderr: false, tty: false });
    const status = readAll(streams.error);
    const hash = createHash('sha256');
    let bytes = 0;
    const start = Date.now();
    streams.stdout!.on('data', (d: Buffer) => {
      bytes += d.length;
      hash.update(d);
    });
    await once(streams.stdout!, 'end');
    const seconds = (Date.now() - start) / 1000;
    expect(bytes).toBe(total);
    const expected = createHash('sha256');
    for (let sent = 0; sent < total; sent += block.length) expected.update(block);
    expect(hash.digest('hex')).toBe(expected.digest('hex'));
    expect((await status).toString()).toBe('{"metadata":{},"status":"Success"}');
    console.log(`remotecommand: 100 MiB stdout in ${seconds.toFixed(2)} s`);
  });

  it('with a tty: no stderr stream, resize messages parsed across chunk boundaries', async () => {
    let sizes!: Promise<TerminalSize[]>;
    let sawStderr: unknown = 'unset';
    const { url } = await startExecServer(async (s) => {
      sawStderr = s.stderr;
      sizes = new Promise((resolve) => {
        const got: TerminalSize[] = [];
        s.on('resize', (size) => {
          got.push(size);
          if (got.length === 3) resolve(got);
        });
      });
      await sizes;
      s.stdout!.write('tty output');
      await s.finish({ exitCode: 0 });
    });
    const { connection, protocol } = await upgrade(url('stdin=1&stdout=1&stderr=1&tty=1'), ALL);
    const streams = await openRemoteCommandStreams(connection, protocol, { stdin: true, stdout: true, stderr: true, tty: true });
    expect(streams.stderr).toBeUndefined();
    expect(streams.resize).toBeDefined();
    const out = readAll(streams.stdout!);
    streams.resize!.write('{"Width":80,"Height":24}{"Wid');
    streams.resize!.write('th":200,"Height":50}\n');
    streams.resize!.write(' {"width":1,"height":65535}');
    expect((await out).toString()).toBe('tty output');
    expect(await sizes).toEqual([{ width: 80, height: 24 }, { width: 200, height: 50 }, { width: 1, height: 65535 }]);
    expect(sawStderr).toBeUndefined();
  });

  it('gives up with DeadlineExceeded when the client does not open every stream in time', async () => {
    const { url, sessions } = await startExecServer(() => undefined, 300);
    const { connection } = await upgrade(url('stdout=1&stderr=1'), ALL);
    const e = connection.openStream({ streamType: 'error' });
    await e.waitForReply(5000);
    const outcome = await sessions[0]!;
    expect(outcome).toBeInstanceOf(DeadlineExceededError);
    expect((outcome as Error).message).toMatch(/missing: stdout, stderr/);
    await connection.closed;
  });

  it('resets a stream of a type the request did not ask for', async () => {
    const { url } = await startExecServer((s) => s.finish({ exitCode: 0 }));
    const { connection } = await upgrade(url('stdout=1'), ALL);
    const stdin = connection.openStream({ streamType: 'stdin' });
    await expect(stdin.waitForReply(5000)).rejects.toMatchObject({ status: 3 });
  });

  it('accepts the older v1 and v2 protocols', async () => {
    const { url } = await startExecServer(async (s) => {
      s.stdout!.write(s.protocol);
      await s.finish({ exitCode: 1 });
    });
    for (const p of [REMOTE_COMMAND_V1, REMOTE_COMMAND_V2]) {
      const { connection, protocol } = await upgrade(url('stdout=1'), [p]);
      const streams = await openRemoteCommandStreams(connection, protocol, { stdin: false, stdout: true, stderr: false, tty: false });
      expect((await readAll(streams.stdout!)).toString()).toBe(p);
      expect((await readAll(streams.error)).toString()).toBe('command terminated with non-zero exit code: exit status 1');
    }
  });
});

describe('hostile input after the upgrade', () => {
  async function rawUpgrade(url: string): Promise<Socket> {
    const { hostname, port, pathname, search } = new URL(url);
    const { connect } = await import('node:net');
    const socket = connect(Number(port), hostname);
    cleanups.push(() => socket.destroy());
    await once(socket, 'connect');
    socket.write(`POST ${pathname}${search} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n` +
      `X-Stream-Protocol-Version: ${REMOTE_COMMAND_V4}\r\n\r\n`);
    let head = '';
    while (!head.includes('\r\n\r\n')) head += ((await once(socket, 'data')) as [Buffer])[0].toString('latin1');
    expect(head).toMatch(/^HTTP\/1.1 101 /);
    return socket;
  }

  it('closes a connection that sends garbage or an oversized header block; other sessions carry on', async () => {
    const { url, sessions } = await startExecServer(async (s) => {
      s.stdout!.write('fine');
      await s.finish({ exitCode: 0 });
    });
    // A healthy session in progress on the same server.
    const healthy = await upgrade(url('stdout=1'), ALL);
    const errorStream = healthy.connection.openStream({ streamType: 'error' });
    await errorStream.waitForReply(5000);

    const garbage = await rawUpgrade(url('stdout=1'));
    garbage.write('this is garbage, not a frame');
    garbage.resume();
    await once(garbage, 'close');

    // 8 MiB of header value: compresses to a few KiB, inflates past the 256 KiB cap.
    const bomb = await rawUpgrade(url('stdout=1'));
    const { HeaderCompressor } = await import('../spdy/header-compression.js');
    const { encodeHeaderBlock } = await import('../spdy/header-block.js');
    const { encodeFrame } = await import('../spdy/frames.js');
    const comp = new HeaderCompressor();
    const block = await comp.compress(encodeHeaderBlock({ streamtype: 'error', filler: 'x'.repeat(8 * 1024 * 1024) }));
    comp.close();
    bomb.write(encodeFrame({ type: 'syn_stream', streamId: 1, associatedStreamId: 0, priority: 0, slot: 0, flags: 0, headerBlock: block }));
    bomb.resume();
    await once(bomb, 'close');

    const outcomes = await Promise.all([sessions[1]!, sessions[2]!]);
    expect((outcomes[0] as Error).constructor.name).toBe('SpdyProtocolError');
    expect((outcomes[1] as Error).constructor.name).toBe('SpdyLimitError');

    // The healthy one completes normally.
    const stdout = healthy.connection.openStream({ streamType: 'stdout' });
    await stdout.waitForReply(5000);
    expect((await readAll(stdout)).toString()).toBe('fine');
    expect((await readAll(errorStream)).toString()).toBe('{"metadata":{},"status":"Success"}');
  });
});

describe('normalizeRemoteCommandOptions', () => {
  it('drops stderr under a tty and demands at least one stream', () => {
    expect(normalizeRemoteCommandOptions({ stdin: true, stdout: true, stderr: true, tty: true }))
      .toEqual({ stdin: true, stdout: true, stderr: false, tty: true });
    expect(() => normalizeRemoteCommandOptions({ stdin: false, stdout: false, stderr: true, tty: true }))
      .toThrow(/at least 1 of stdin, stdout, stderr/);
  });
});
