// The CRI streaming server end to end: Exec / Attach / PortForward RPCs return URLs on the
// daemon's streaming server, and real clients (SPDY like kubectl/crictl, WebSocket like
// browsers and @kubernetes/client-node) run commands in, attach to, and forward ports into real
// containers of a real crib daemon.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { status } from '@grpc/grpc-js';
// The package index pulls in an undici that needs Node 22 (zstd); the exec and WebSocket
// modules themselves do not, so they are imported directly.
import { Exec } from '@kubernetes/client-node/dist/exec.js';
import { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PORT_FORWARD_PROTOCOL_V1,
  REMOTE_COMMAND_V1,
  REMOTE_COMMAND_V2,
  REMOTE_COMMAND_V3,
  REMOTE_COMMAND_V4,
} from '../src/streaming/protocol/constants.js';
import { Channel, decodeChannelMessage, encodeChannelMessage, encodeCloseSignal } from '../src/streaming/protocol/ws-channel.js';
import { startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { openSpdyTunnel, openWebSocketTunnel } from '../test-support/spdy-tunnel-client.js';
import { encodeFrame } from '../src/streaming/spdy/frames.js';
import type { SpdyConnection } from '../src/streaming/spdy/spdy-connection.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';
import {
  UpgradeFailedError,
  openPortForwardStreams,
  openRemoteCommandStreams,
  readAll,
  spdyUpgrade,
} from '../test-support/spdy-client.js';

const SPDY_REMOTE_COMMAND = [REMOTE_COMMAND_V4, REMOTE_COMMAND_V3, REMOTE_COMMAND_V2, REMOTE_COMMAND_V1];

interface CommandOutcome {
  stdout: string;
  stderr: string;
  error: string;
  protocol: string;
}

/** kubectl exec over SPDY: stdin (if any) written then closed; outputs and status read to end. */
async function spdyCommand(
  url: string,
  want: { stdin?: string; stdout?: boolean; stderr?: boolean; tty?: boolean },
  protocols = SPDY_REMOTE_COMMAND,
): Promise<CommandOutcome> {
  const { connection, protocol } = await spdyUpgrade(url, protocols);
  try {
    const s = await openRemoteCommandStreams(connection, protocol, {
      stdin: want.stdin !== undefined, stdout: want.stdout ?? true, stderr: want.stderr ?? false, tty: want.tty ?? false,
    });
    const out = s.stdout ? readAll(s.stdout) : Promise.resolve(Buffer.alloc(0));
    const err = s.stderr ? readAll(s.stderr) : Promise.resolve(Buffer.alloc(0));
    const st = readAll(s.error);
    if (s.stdin) s.stdin.end(want.stdin);
    const [o, e, x] = await Promise.all([out, err, st]);
    return { stdout: o.toString(), stderr: e.toString(), error: x.toString(), protocol };
  } finally {
    await connection.close();
  }
}

interface WsOutcome {
  channels: Map<number, Buffer>;
  protocol: string;
  closeCode: number;
}

/** A WebSocket exec/attach with one subprotocol; under v5 stdin is closed with the CLOSE signal. */
function wsCommand(url: string, protocol: string | undefined, stdin?: string): Promise<WsOutcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), protocol ? [protocol] : []);
    const channels = new Map<number, Buffer>();
    ws.on('open', () => {
      if (stdin === undefined) return;
      const m = encodeChannelMessage(protocol ?? 'channel.k8s.io', Channel.stdin, Buffer.from(stdin));
      ws.send(m.data, { binary: m.binary });
      if (protocol === 'v5.channel.k8s.io') ws.send(encodeCloseSignal(protocol, Channel.stdin).data, { binary: true });
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const msg = decodeChannelMessage(protocol ?? 'channel.k8s.io', data, isBinary);
      if (msg.kind === 'data') channels.set(msg.channel, Buffer.concat([channels.get(msg.channel) ?? Buffer.alloc(0), msg.data]));
    });
    ws.on('error', reject);
    ws.on('close', (code) => resolve({ channels, protocol: ws.protocol, closeCode: code }));
  });
}

const text = (o: WsOutcome, ch: number) => (o.channels.get(ch) ?? Buffer.alloc(0)).toString();

function rawHttp(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(port, '127.0.0.1', () => sock.write(head));
    let got = '';
    sock.on('data', (d) => (got += d.toString()));
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
    sock.setTimeout(10_000, () => sock.destroy(new Error('raw HTTP request timed out')));
  });
}

describe('streaming: exec, attach, port-forward', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let logDir: string;
  let image: string;
  let podId: string;
  let sleeper: string;

  const podConfig = (name: string) => podConfigFactory('streaming', logDir)(name);
  const runContainer = async (pod: string, name: string, script: string, extra: Record<string, unknown> = {}) => {
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId: pod,
      config: { metadata: { name, attempt: 0 }, image: { image }, command: ['/bin/sh', '-c'], args: [script], logPath: `${name}.log`, ...extra },
    });
    await d.cri.runtime.StartContainer({ containerId });
    return containerId as string;
  };
  const execUrl = async (containerId: string, cmd: string[], flags: { stdin?: boolean; stdout?: boolean; stderr?: boolean; tty?: boolean }) =>
    (await d.cri.runtime.Exec({ containerId, cmd, stdin: false, stdout: true, stderr: false, tty: false, ...flags })).url as string;

  beforeAll(async () => {
    logDir = await mkdtemp(join(tmpdir(), `crib-stream-logs-${process.pid}-`));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    // Slow-client cut-off after 3 s instead of 5 minutes.
    d = await startDaemon({ toml: '[streaming]\nstall_timeout = "3s"\n' });
    await d.cri.image.PullImage({ image: { image } });
    podId = (await d.cri.runtime.RunPodSandbox({ config: podConfig('exec') })).podSandboxId;
    sleeper = await runContainer(podId, 'sleeper', 'exec sleep 100000');
  });
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    if (logDir) await rm(logDir, { recursive: true, force: true });
  });

  it('returns streaming URLs with single-use random tokens', async () => {
    const a = await execUrl(sleeper, ['true'], {});
    const b = await execUrl(sleeper, ['true'], {});
    expect(a).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    const r = await spdyCommand(a, {});
    expect(r.protocol).toBe(REMOTE_COMMAND_V4);
    expect(JSON.parse(r.error)).toEqual({ metadata: {}, status: 'Success' });
    // The same URL again, an invented token and an unknown route: 404 and no stream.
    await expect(spdyCommand(a, {})).rejects.toMatchObject({ statusCode: 404 });
    await expect(spdyCommand(a.replace(/[^/]+$/, 'x'.repeat(43)), {})).rejects.toBeInstanceOf(UpgradeFailedError);
    await expect(spdyCommand(a.replace('/exec/', '/attach/'), {})).rejects.toMatchObject({ statusCode: 404 });
    // A plain GET that presents a live token uses it up and gets kubelet's upgrade error.
    const c = await execUrl(sleeper, ['true'], {});
    const plain = await new Promise<number>((resolve, reject) =>
      httpRequest(c, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject).end());
    expect(plain).toBe(400);
    await expect(spdyCommand(c, {})).rejects.toMatchObject({ statusCode: 404 });
  });

  it('SPDY exec: separate stdout/stderr, stdin to cat, exit codes in the v4 status', async () => {
    const r = await spdyCommand(await execUrl(sleeper, ['sh', '-c', 'echo out; echo err >&2; exit 3'], { stderr: true }), { stderr: true });
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(JSON.parse(r.error)).toMatchObject({
      status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] },
    });

    const payload = 'line one\n' + 'x'.repeat(200_000) + '\nend\n';
    const cat = await spdyCommand(await execUrl(sleeper, ['cat'], { stdin: true }), { stdin: payload });
    expect(cat.stdout.length).toBe(payload.length);
    expect(cat.stdout).toBe(payload);
    expect(JSON.parse(cat.error)).toEqual({ metadata: {}, status: 'Success' });

    // v1..v3 clients: the failure message as plain text, nothing on success.
    const old = await spdyCommand(await execUrl(sleeper, ['sh', '-c', 'exit 2'], {}), {}, [REMOTE_COMMAND_V2]);
    expect(old.protocol).toBe(REMOTE_COMMAND_V2);
    expect(old.error).toBe('command terminated with non-zero exit code: exit status 2');
  });

  it('SPDY exec: reports a command that cannot run on the error stream', async () => {
    const r = await spdyCommand(await execUrl(sleeper, ['/no/such/tool'], {}), {});
    const st = JSON.parse(r.error);
    expect(st).toMatchObject({ status: 'Failure', reason: 'InternalError', code: 500 });
    expect(st.message).toMatch(/no\/such\/tool/);
  });

  it('SPDY exec with a tty: isatty, and resize changes stty size', async () => {
    const url = await execUrl(sleeper, ['sh', '-c', '[ -t 0 ] && echo isatty; while read x; do stty size; done'], { stdin: true, tty: true });
    const { connection, protocol } = await spdyUpgrade(url, SPDY_REMOTE_COMMAND);
    try {
      const s = await openRemoteCommandStreams(connection, protocol, { stdin: true, stdout: true, stderr: false, tty: true });
      expect(s.stderr).toBeUndefined();
      let out = '';
      s.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      const status = readAll(s.error);
      await waitFor('isatty', () => out.includes('isatty'));
      s.resize!.write(JSON.stringify({ Width: 101, Height: 24 }));
      await waitFor('resized terminal', () => {
        s.stdin!.write('\n');
        return out.replace(/\r/g, '').includes('24 101\n');
      });
      s.resize!.write(JSON.stringify({ Width: 60, Height: 7 }));
      await waitFor('second resize', () => {
        s.stdin!.write('\n');
        return out.replace(/\r/g, '').includes('7 60\n');
      });
      s.stdin!.write('\x04'); // ^D: read fails, the loop ends
      expect(JSON.parse((await status).toString())).toEqual({ metadata: {}, status: 'Success' });
    } finally {
      await connection.close();
    }
  });

  it('delivers all output of a short tty exec, every time', async () => {
    for (let i = 0; i < 8; i++) {
      const url = await execUrl(sleeper, ['echo', `hi-${i}`], { stdin: true, tty: true });
      const { connection, protocol } = await spdyUpgrade(url, SPDY_REMOTE_COMMAND);
      try {
        const s = await openRemoteCommandStreams(connection, protocol, { stdin: true, stdout: true, stderr: false, tty: true });
        const out = readAll(s.stdout!);
        // crictl with a stdin that is not a terminal closes it at once; under `script` it
        // sends a byte first. Either may reach the monitor after the process already exited.
        if (i % 2 === 1) s.stdin!.end();
        else s.stdin!.write('\0');
        const status = await readAll(s.error);
        expect(JSON.parse(status.toString())).toEqual({ metadata: {}, status: 'Success' });
        // The byte is echoed as ^@ when the tty sees it before the process exits.
        expect((await out).toString().replace('^@', '')).toBe(`hi-${i}\r\n`);
      } finally {
        await connection.close();
      }
    }
  });

  it('kills the exec\'d process when the client goes away', async () => {
    const url = await execUrl(sleeper, ['sleep', '4242'], {});
    const { connection, protocol } = await spdyUpgrade(url, SPDY_REMOTE_COMMAND);
    await openRemoteCommandStreams(connection, protocol, { stdin: false, stdout: true, stderr: false, tty: false });
    const ps = async () => (await d.cri.runtime.ExecSync({ containerId: sleeper, cmd: ['ps', '-o', 'args'], timeout: '10' })).stdout.toString();
    await waitFor('exec running', async () => (await ps()).includes('sleep 4242'));
    connection.destroy();
    await waitFor('exec killed', async () => !(await ps()).includes('sleep 4242'));
  });

  it('a client that stops reading is cut off and its process killed; others are unaffected', async () => {
    const url = await execUrl(sleeper, ['sh', '-c', 'while true; do head -c 65536 /dev/zero; done'], {});
    const { connection, protocol } = await spdyUpgrade(url, SPDY_REMOTE_COMMAND);
    const streams = await openRemoteCommandStreams(connection, protocol, { stdin: false, stdout: true, stderr: false, tty: false });
    // Never read stdout: our buffers fill, TCP pushes back, the monitor drops this attacher.
    const ps = async () => (await d.cri.runtime.ExecSync({ containerId: sleeper, cmd: ['ps', '-o', 'args'], timeout: '10' })).stdout.toString();
    await waitFor('output loop running', async () => (await ps()).includes('while true'));
    const other = await spdyCommand(await execUrl(sleeper, ['echo', 'meanwhile'], {}), {});
    expect(other.stdout).toBe('meanwhile\n');
    await waitFor('slow exec killed', async () => !(await ps()).includes('while true'), 40_000);
    // Reading again drains what was queued: the server has ended the session.
    streams.stdout!.on('data', () => undefined);
    streams.stdout!.on('error', () => undefined);
    streams.error.on('error', () => undefined);
    const ended = await Promise.race([connection.closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 40_000))]);
    expect(ended).toBe(true);
  });

  it('Exec/Attach/PortForward validate their input', async () => {
    await expect(d.cri.runtime.Exec({ containerId: 'f'.repeat(64), cmd: ['true'], stdout: true })).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(d.cri.runtime.Exec({ containerId: sleeper, cmd: [], stdout: true })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(d.cri.runtime.Exec({ containerId: sleeper, cmd: ['true'] })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(d.cri.runtime.Exec({ containerId: sleeper, cmd: ['true'], tty: true, stdout: true, stderr: true }))
      .rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(d.cri.runtime.Attach({ containerId: sleeper, stdin: true, stdout: true })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(d.cri.runtime.PortForward({ podSandboxId: 'nope' })).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(d.cri.runtime.PortForward({ podSandboxId: podId, port: [70000] })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });

    const stopped = await runContainer(podId, 'short', 'exit 0');
    await waitFor('exited', async () => (await d.cri.runtime.ContainerStatus({ containerId: stopped })).status.state === 'CONTAINER_EXITED');
    await expect(d.cri.runtime.Exec({ containerId: stopped, cmd: ['true'], stdout: true })).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
    await expect(d.cri.runtime.Attach({ containerId: stopped, stdout: true })).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
  });

  it('attach: two clients see the output; stdin from one reaches cat', async () => {
    const cat = await runContainer(podId, 'cat', 'exec cat', { stdin: true });
    const open = async (stdin: boolean) => {
      const { url } = await d.cri.runtime.Attach({ containerId: cat, stdin, stdout: true, stderr: true });
      const { connection, protocol } = await spdyUpgrade(url, SPDY_REMOTE_COMMAND);
      const s = await openRemoteCommandStreams(connection, protocol, { stdin, stdout: true, stderr: true, tty: false });
      let out = '';
      s.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      return { connection, s, out: () => out };
    };
    const a = await open(true);
    const b = await open(false);
    try {
      a.s.stdin!.write('ping from a\n');
      await waitFor('both attachers see the echo', () => a.out() === 'ping from a\n' && b.out() === 'ping from a\n');
      // Detaching one client leaves the container and the other attacher alone.
      await b.connection.close();
      a.s.stdin!.write('second\n');
      await waitFor('a sees more', () => a.out() === 'ping from a\nsecond\n');
      const st = (await d.cri.runtime.ContainerStatus({ containerId: cat })).status;
      expect(st.state).toBe('CONTAINER_RUNNING');
    } finally {
      await a.connection.close();
      await b.connection.close();
    }
    // The session ends with the container: the attacher gets a success status.
    const c = await open(false);
    const status2 = readAll(c.s.error);
    await d.cri.runtime.StopContainer({ containerId: cat, timeout: '0' });
    expect(JSON.parse((await status2).toString())).toEqual({ metadata: {}, status: 'Success' });
    await c.connection.close();
  });

  describe('port-forward', () => {
    let webPod: string;
    let webCtr: string;
    /** GET through a port-forward on `connection`: the body after the HTTP head. */
    const forwardedGet = async (connection: SpdyConnection, path: string, requestId: string): Promise<Buffer> => {
      const { data, error } = await openPortForwardStreams(connection, 8080, requestId);
      const got = readAll(data);
      const err = readAll(error);
      data.end(`GET ${path} HTTP/1.0\r\n\r\n`);
      const [response, e] = await Promise.all([got, err]);
      expect(e.toString()).toBe('');
      return response.subarray(response.indexOf('\r\n\r\n') + 4);
    };
    const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const bigFileDigest = async () =>
      (await d.cri.runtime.ExecSync({ containerId: webCtr, cmd: ['sha256sum', '/www/big'], timeout: '10' })).stdout.toString().split(' ')[0];
    const PAGE = 'hello from a crib pod\n';
    beforeAll(async () => {
      webPod = (await d.cri.runtime.RunPodSandbox({ config: podConfig('web') })).podSandboxId;
      webCtr = await runContainer(webPod, 'httpd', `mkdir -p /www && printf '${PAGE.replace('\n', '\\n')}' > /www/index.html && ` +
        'dd if=/dev/urandom of=/www/big bs=1048576 count=8 2>/dev/null && exec httpd -f -p 8080 -h /www');
      // Ready when a forwarded request gets an answer.
      await waitFor('httpd listening', async () => {
        const { url } = await d.cri.runtime.PortForward({ podSandboxId: webPod, port: [8080] });
        const { connection } = await spdyUpgrade(url, [PORT_FORWARD_PROTOCOL_V1]);
        try {
          const { data, error } = await openPortForwardStreams(connection, 8080, 'probe');
          const got = readAll(data);
          const err = readAll(error);
          data.end('GET / HTTP/1.0\r\n\r\n');
          const [body, e] = await Promise.all([got, err]);
          return e.length === 0 && body.toString().includes(PAGE);
        } finally {
          await connection.close();
        }
      }, 30_000);
    });

    it('SPDY: 50 concurrent connections each get the page', async () => {
      const { url } = await d.cri.runtime.PortForward({ podSandboxId: webPod, port: [8080] });
      const { connection, protocol } = await spdyUpgrade(url, [PORT_FORWARD_PROTOCOL_V1]);
      expect(protocol).toBe(PORT_FORWARD_PROTOCOL_V1);
      try {
        const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
          const { data, error } = await openPortForwardStreams(connection, 8080, String(i));
          const got = readAll(data);
          const err = readAll(error);
          data.end(`GET /index.html?c=${i} HTTP/1.0\r\n\r\n`);
          const [body, e] = await Promise.all([got, err]);
          return { body: body.toString(), err: e.toString() };
        }));
        for (const r of results) {
          expect(r.err).toBe('');
          expect(r.body).toMatch(/^HTTP\/1\.[01] 200 OK\r\n/);
          expect(r.body.endsWith(PAGE)).toBe(true);
        }
      } finally {
        await connection.close();
      }
    });

    it('SPDY: an 8 MiB random file arrives intact', async () => {
      const { url } = await d.cri.runtime.PortForward({ podSandboxId: webPod, port: [8080] });
      const { connection } = await spdyUpgrade(url, [PORT_FORWARD_PROTOCOL_V1]);
      try {
        const body = await forwardedGet(connection, '/big', 'big');
        expect(body.length).toBe(8 * 1048576);
        expect(sha256(body)).toBe(await bigFileDigest());
      } finally {
        await connection.close();
      }
    });

    it('SPDY tunneled in WebSocket (SPDY/3.1+portforward.k8s.io, kubectl >= 1.31): pages and a large file', async () => {
      const { url } = await d.cri.runtime.PortForward({ podSandboxId: webPod, port: [8080] });
      const { connection, protocol } = await openSpdyTunnel(url);
      expect(protocol).toBe('SPDY/3.1+portforward.k8s.io');
      try {
        const pages = await Promise.all(Array.from({ length: 5 }, (_, i) => forwardedGet(connection, '/index.html', `t${i}`)));
        for (const page of pages) expect(page.toString()).toBe(PAGE);
        const body = await forwardedGet(connection, '/big', 'big');
        expect(sha256(body)).toBe(await bigFileDigest());
      } finally {
        await connection.close();
      }
    });

    it('SPDY: a client that resets each data stream once the pod is done (client-go) keeps its session', async () => {
      // client-go never half-closes a forwarded connection; it resets the data stream as soon
      // as the pod's side ended, and anything then said on the error stream ends its session.
      const { url } = await d.cri.runtime.PortForward({ podSandboxId: webPod, port: [8080] });
      const { connection } = await spdyUpgrade(url, [PORT_FORWARD_PROTOCOL_V1]);
      try {
        for (let i = 0; i < 3; i++) {
          const { data, error } = await openPortForwardStreams(connection, 8080, `reset-${i}`);
          const err = readAll(error);
          const chunks: Buffer[] = [];
          const body = new Promise<string>((resolve, reject) => {
            data.on('data', (c: Buffer) => chunks.push(c));
            data.once('end', () => resolve(Buffer.concat(chunks).toString()));
            data.once('error', reject);
          });
          data.write('GET / HTTP/1.0\r\n\r\n');
          expect(await body).toContain(PAGE);
          data.reset();
          expect((await err).toString()).toBe('');
        }
      } finally {
        await connection.close();
      }
    });

    it('SPDY tunneled in WebSocket: the server ends the tunnel with a normal closure (1000)', async () => {
      // client-go treats a close without a status code as an error, not as the session's end.
      const { url } = await d.cri.runtime.PortForward({ podSandboxId: webPod, port: [8080] });
      const tunnel = await openWebSocketTunnel(url, 'SPDY/3.1+portforward.k8s.io');
      tunnel.stream.on('data', () => undefined);
      // A GOAWAY with nothing open: the server ends the session from its side.
      tunnel.stream.write(encodeFrame({ type: 'goaway', lastGoodStreamId: 0, status: 0 }));
      expect(await tunnel.closeCode).toBe(1000);
    });

    it('SPDY: a closed port is reported on the error stream', async () => {
      const { url } = await d.cri.runtime.PortForward({ podSandboxId: webPod });
      const { connection } = await spdyUpgrade(url, [PORT_FORWARD_PROTOCOL_V1]);
      try {
        const { data, error } = await openPortForwardStreams(connection, 9, 'closed');
        const err = readAll(error);
        data.end();
        expect((await err).toString()).toMatch(/^error forwarding port 9 to pod [0-9a-f]{64}, uid : .*connect 127\.0\.0\.1:9: Connection refused/);
      } finally {
        await connection.close();
      }
    });

    it('WebSocket: ports= query, port prefixes on data and error channels, the page on data', async () => {
      const { url } = await d.cri.runtime.PortForward({ podSandboxId: webPod });
      const ws = new WebSocket(`${url.replace(/^http/, 'ws')}?ports=8080`, ['v4.channel.k8s.io']);
      const channels = new Map<number, Buffer>();
      ws.on('message', (data: Buffer) => {
        channels.set(data[0]!, Buffer.concat([channels.get(data[0]!) ?? Buffer.alloc(0), data.subarray(1)]));
      });
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      expect(ws.protocol).toBe('v4.channel.k8s.io');
      ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('GET / HTTP/1.0\r\n\r\n')]));
      await new Promise((resolve) => ws.once('close', resolve));
      const port = Buffer.from([8080 & 0xff, 8080 >> 8]);
      expect(channels.get(1)).toEqual(port);
      expect(channels.get(0)!.subarray(0, 2)).toEqual(port);
      expect(channels.get(0)!.subarray(2).toString()).toMatch(new RegExp(`^HTTP/1\\.[01] 200 OK\\r\\n[\\s\\S]*${PAGE}$`));
    });
  });

  it('WebSocket exec with a tty starts at the size the client sent before the process ran', async () => {
    // crictl/kubectl send the terminal size right after connecting, before the exec'd process
    // exists; that size must still reach it (not a 0x0 terminal until the next resize).
    const url = await execUrl(sleeper, ['sh', '-c', 'while read x; do stty size; done'], { stdin: true, tty: true });
    const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v5.channel.k8s.io']);
    let out = '';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const msg = decodeChannelMessage('v5.channel.k8s.io', data, isBinary);
      if (msg.kind === 'data' && msg.channel === Channel.stdout) out += msg.data.toString();
    });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const send = (channel: number, data: string) => {
      const m = encodeChannelMessage('v5.channel.k8s.io', channel, Buffer.from(data));
      ws.send(m.data, { binary: m.binary });
    };
    send(Channel.resize, JSON.stringify({ Width: 101, Height: 24 }));
    try {
      await waitFor('the size sent first', () => {
        send(Channel.stdin, '\n');
        return out.includes('24 101');
      }, 20_000);
    } finally {
      ws.close();
    }
  });

  it('WebSocket exec: v5 (CLOSE closes stdin), v4 and base64 channel protocols', async () => {
    const v5 = await wsCommand(await execUrl(sleeper, ['cat'], { stdin: true }), 'v5.channel.k8s.io', 'via v5\n');
    expect(v5.protocol).toBe('v5.channel.k8s.io');
    expect(text(v5, Channel.stdout)).toBe('via v5\n');
    expect(JSON.parse(text(v5, Channel.error))).toEqual({ metadata: {}, status: 'Success' });
    expect(v5.closeCode).toBe(1000);

    const v4 = await wsCommand(await execUrl(sleeper, ['sh', '-c', 'echo o; echo e >&2; exit 4'], { stderr: true }), 'v4.channel.k8s.io');
    expect(text(v4, Channel.stdout)).toBe('o\n');
    expect(text(v4, Channel.stderr)).toBe('e\n');
    expect(JSON.parse(text(v4, Channel.error))).toMatchObject({ reason: 'NonZeroExitCode', details: { causes: [{ message: '4' }] } });

    const b64 = await wsCommand(await execUrl(sleeper, ['sh', '-c', 'printf "\\001\\377bin"; exit 5'], {}), 'v4.base64.channel.k8s.io');
    expect(b64.channels.get(Channel.stdout)).toEqual(Buffer.from([1, 255, 0x62, 0x69, 0x6e]));
    expect(JSON.parse(text(b64, Channel.error))).toMatchObject({ details: { causes: [{ message: '5' }] } });

    const v1 = await wsCommand(await execUrl(sleeper, ['sh', '-c', 'echo plain; exit 6'], {}), 'base64.channel.k8s.io');
    expect(text(v1, Channel.stdout)).toBe('plain\n');
    expect(text(v1, Channel.error)).toBe('command terminated with non-zero exit code: exit status 6');
  });

  it('WebSocket attach: stdin reaches a cat container and its echo comes back', async () => {
    const cat = await runContainer(podId, 'wscat', 'exec cat', { stdin: true });
    const { url } = await d.cri.runtime.Attach({ containerId: cat, stdin: true, stdout: true, stderr: true });
    const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v5.channel.k8s.io']);
    let out = '';
    ws.on('message', (m: Buffer) => {
      if (m[0] === Channel.stdout) out += m.subarray(1).toString();
    });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    ws.send(Buffer.concat([Buffer.from([Channel.stdin]), Buffer.from('over websocket\n')]));
    await waitFor('echo', () => out === 'over websocket\n');
    const closed = new Promise((resolve) => ws.once('close', resolve));
    ws.close();
    await closed;
    expect((await d.cri.runtime.ContainerStatus({ containerId: cat })).status.state).toBe('CONTAINER_RUNNING');
    await d.cri.runtime.StopContainer({ containerId: cat, timeout: '0' });
  });

  it('WebSocket exec with @kubernetes/client-node', async () => {
    const url = await execUrl(sleeper, ['sh', '-c', 'read line; echo "k8s:$line"; echo warn >&2; exit 9'], { stdin: true, stderr: true });
    const { origin, pathname } = new URL(url);
    // KubeConfig lives in the package index (see the import note); the handler needs only these.
    const kc = { getCurrentCluster: () => ({ name: 'crib', server: origin }), applyToHTTPSOptions: async () => undefined };
    // The library builds kubelet-apiserver paths; a WebSocketHandler pointed at our raw path
    // lets the official Exec logic (channels, v5 CLOSE, status) run unchanged.
    const handler = new WebSocketHandler(kc as never);
    const exec = new Exec(kc as never, { connect: (_path: string, t: unknown, b: unknown) => handler.connect(pathname, t as never, b as never) } as never);
    let out = '';
    let err = '';
    const sink = (f: (s: string) => void) => new Writable({ write(c, _e, cb) { f(c.toString()); cb(); } });
    const stdin = new PassThrough();
    const statusP = new Promise<{ status?: string; details?: { causes?: { message?: string }[] } }>((resolve) => {
      void exec.exec('ns', 'pod', 'c', ['ignored'], sink((s) => (out += s)), sink((s) => (err += s)), stdin, false, (st) => resolve(st as never));
    });
    stdin.end('hello\n');
    const st = await statusP;
    expect(out).toBe('k8s:hello\n');
    expect(err).toBe('warn\n');
    expect(st.status).toBe('Failure');
    expect(st.details?.causes?.[0]?.message).toBe('9');
  });

  it('refuses bad upgrades and oversized headers, and keeps serving', async () => {
    const url = await execUrl(sleeper, ['true'], {});
    const err = await spdyCommand(url, {}, ['v9.channel.k8s.io']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpgradeFailedError);
    expect((err as UpgradeFailedError).statusCode).toBe(403);
    expect((err as UpgradeFailedError).headers['x-accepted-stream-protocol-versions']).toBeDefined();

    const wsUrl = await execUrl(sleeper, ['true'], {});
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(wsUrl.replace(/^http/, 'ws'), ['v9.nope']);
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
      ws.on('error', () => undefined);
    });
    expect(refused).toBe(403);

    const port = Number(new URL(url).port);
    const huge = await rawHttp(port, `GET /exec/x HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    const junk = await rawHttp(port, 'NOT HTTP AT ALL\r\n\r\n');
    expect(junk).toMatch(/^HTTP\/1\.1 400 /);

    // A SPDY client that sends garbage after the upgrade gets its connection closed.
    const bad = await execUrl(sleeper, ['sleep', '1'], {});
    const { socket } = await spdyUpgrade(bad, SPDY_REMOTE_COMMAND);
    socket.write(Buffer.from('this is not a SPDY frame at all, not even close'));
    await new Promise((resolve) => socket.once('close', resolve));

    const ok = await spdyCommand(await execUrl(sleeper, ['echo', 'still here'], {}), {});
    expect(ok.stdout).toBe('still here\n');
  });
});

describe('streaming over TLS', () => {
  let d: TestDaemon | undefined;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `crib-stream-tls-${process.pid}-`));
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    d = await startDaemon({ toml: `[streaming]\ntls_cert = "${join(dir, 'cert.pem')}"\ntls_key = "${join(dir, 'key.pem')}"\n` });
  });
  afterAll(async () => {
    await d?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves https URLs when tls_cert and tls_key are set', async () => {
    const { podSandboxId } = await d!.cri.runtime.RunPodSandbox({
      config: { metadata: { name: 'tls', namespace: 'streaming', uid: `tls-${process.pid}`, attempt: 0 }, logDirectory: join(dir, 'logs'), linux: {} },
    });
    const { url } = await d!.cri.runtime.PortForward({ podSandboxId, port: [7] });
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/portforward\//);
    const ws = new WebSocket(`${url.replace(/^https/, 'wss')}?ports=7`, ['v4.channel.k8s.io'], { rejectUnauthorized: false });
    const channels = new Map<number, Buffer>();
    ws.on('message', (m: Buffer) => channels.set(m[0]!, Buffer.concat([channels.get(m[0]!) ?? Buffer.alloc(0), m.subarray(1)])));
    await new Promise((resolve, reject) => { ws.once('close', resolve); ws.once('error', reject); });
    // Nothing listens on port 7 in the pod: the error channel says so after its port prefix.
    expect(channels.get(1)!.subarray(2).toString()).toMatch(/^error forwarding port 7 to pod: .*127\.0\.0\.1:7: Connection refused/);
  });
});
