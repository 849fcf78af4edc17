// Limits on what a CRI client can make the daemon hold, store, list and echo, attacked through a
// real daemon: oversized metadata, a node full of large (but valid) pods, an endless HTTP/2
// header block, a 1 MiB image name, 40 MiB of ExecSync output, a relative log directory, a pod
// name that would inject into CNI_ARGS, and a flood of Exec RPCs. Each attack must be refused with
// an error naming the limit, and every other client must keep working.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Channel, decodeChannelMessage } from '../../src/streaming/protocol/ws-channel.js';
import { EXEC_SYNC_OUTPUT_BUDGET } from '../../src/server/exec-output.js';
import { KUBELET_CHANNEL_OPTIONS, criClient, type CriClient } from '../../test-support/cri-client.js';
import { podConfigFactory } from '../../test-support/cri-configs.js';
import { criProto } from '../../src/server/cri-proto.js';
import { startDaemon, type TestDaemon } from '../../test-support/daemon.js';
import { H2_PREFACE, grpcRequestHeaders, h2Frame } from '../../test-support/h2-frames.js';
import { pushBusybox } from '../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../test-support/registry.js';

const MiB = 1024 * 1024;

/** Peak and current resident memory of a process, from /proc/<pid>/status, in bytes. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text)![1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

interface FloodResult {
  sent: number;
  goAway?: { code: number; debug: string };
  /** Streams the daemon sent HEADERS on (answered calls). */
  answered: number[];
}

/**
 * A raw HTTP/2 client (node:http2 cannot send an endless header block): the preface, SETTINGS,
 * a HEADERS frame without END_HEADERS, then CONTINUATION frames until `total` bytes are sent or
 * the daemon closes the connection. Reports what was sent and the GOAWAY received, if any.
 * With `afterRequest`, the client first acknowledges the daemon's SETTINGS and makes a valid
 * Version call on stream 1, so the endless block starts (on stream 3) on a connection that has
 * been serving calls.
 */
async function continuationFlood(socketPath: string, total: number, afterRequest = false): Promise<FloodResult> {
  const sock: Socket = connect(socketPath);
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  let received = Buffer.alloc(0);
  let closed = false;
  sock.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
  sock.on('close', () => (closed = true));
  sock.on('error', () => (closed = true));
  const write = (b: Buffer) => new Promise<boolean>((resolve) => {
    if (closed) return resolve(false);
    if (sock.write(b)) return resolve(true);
    const done = (ok: boolean) => () => {
      sock.off('drain', onDrain);
      sock.off('close', onClose);
      resolve(ok);
    };
    const onDrain = done(true);
    const onClose = done(false);
    sock.once('drain', onDrain);
    sock.once('close', onClose);
  });
  let sent = 0;
  const floodStream = afterRequest ? 3 : 1;
  const request = afterRequest ? [
    h2Frame(0x4, 0x1, 0, Buffer.alloc(0)),
    h2Frame(0x1, 0x4, 1, grpcRequestHeaders('/runtime.v1.RuntimeService/Version')),
    h2Frame(0x0, 0x1, 1, Buffer.alloc(5)),
  ] : [];
  await write(Buffer.concat([H2_PREFACE, h2Frame(0x4, 0, 0, Buffer.alloc(0)), ...request, h2Frame(0x1, 0, floodStream, Buffer.from([0x83, 0x86]))]));
  // 64 CONTINUATION frames of 16 KiB per write: 1 MiB at a time.
  const batch = Buffer.concat(Array.from({ length: 64 }, () => h2Frame(0x9, 0, floodStream, Buffer.alloc(16384, 0x40))));
  while (sent < total && (await write(batch))) sent += batch.length;
  await new Promise((r) => setTimeout(r, 300));
  sock.destroy();
  let goAway: FloodResult['goAway'];
  const answered: number[] = [];
  for (let off = 0; off + 9 <= received.length;) {
    const len = received.readUIntBE(off, 3);
    if (received[off + 3] === 0x1) answered.push(received.readUInt32BE(off + 5) & 0x7fffffff);
    if (received[off + 3] === 0x7 && off + 9 + len <= received.length) {
      goAway = { code: received.readUInt32BE(off + 13), debug: received.subarray(off + 17, off + 9 + len).toString() };
    }
    off += 9 + len;
  }
  return { sent, goAway, answered };
}

/** A WebSocket exec on a streaming URL (v5 channels): what the command wrote to stdout. */
function wsExecStdout(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v5.channel.k8s.io']);
    let out = '';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const msg = decodeChannelMessage('v5.channel.k8s.io', data, isBinary);
      if (msg.kind === 'data' && msg.channel === Channel.stdout) out += msg.data.toString();
    });
    ws.on('unexpected-response', (_req, res) => reject(new Error(`streaming URL answered ${res.statusCode}`)));
    ws.on('error', reject);
    ws.on('close', () => resolve(out));
  });
}

async function rejection(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code: number; details: string };
  }
  throw new Error('the call succeeded; it should have been refused');
}

describe('limits on what CRI clients can make the daemon hold', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let kubelet: CriClient;
  let logDir: string;
  let image: string;
  let podConfig: ReturnType<typeof podConfigFactory>;

  const hostNetwork = { linux: { securityContext: { namespaceOptions: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } } };

  /** RunPodSandbox expected to be refused; a pod it created anyway is removed at once. */
  async function refusedPod(config: object): Promise<{ code: number; details: string }> {
    return rejection(d.cri.runtime.RunPodSandbox({ config }).then(async ({ podSandboxId }: { podSandboxId: string }) => {
      await d.cri.runtime.RemovePodSandbox({ podSandboxId });
      return podSandboxId;
    }));
  }

  async function runningContainer(name: string): Promise<{ podSandboxId: string; containerId: string }> {
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig(name) });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId,
      config: { metadata: { name: 'main', attempt: 0 }, image: { image }, command: ['sleep', '1000'] },
    });
    await d.cri.runtime.StartContainer({ containerId });
    return { podSandboxId, containerId };
  }

  beforeAll(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'crib-limits-logs-'));
    podConfig = podConfigFactory('limits', logDir);
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    d = await startDaemon({ logLevel: 'info' });
    // A second client, with kubelet's 16 MiB message limit, that only ever lists and execs.
    kubelet = criClient(d.socket, KUBELET_CHANNEL_OPTIONS);
    await d.cri.image.PullImage({ image: { image } });
  });

  afterAll(async () => {
    kubelet?.close();
    await d?.cleanup();
    await registry?.stop();
    await rm(logDir, { recursive: true, force: true });
  });

  it('closes a connection streaming an endless header block, with flat memory, and serves other clients', async () => {
    const before = memoryOf(d.proc.pid!);
    const flood = await continuationFlood(d.socket, 256 * MiB);
    const after = memoryOf(d.proc.pid!);
    // The daemon gave up on the client long before it sent 256 MiB, and said why.
    expect(flood.sent).toBeLessThan(16 * MiB);
    expect(flood.goAway).toEqual({ code: 0xb, debug: 'the header block of stream 1 is larger than 65536 bytes' });
    expect(after.hwm - before.hwm).toBeLessThan(50 * MiB);
    expect((await kubelet.runtime.Version({})).runtimeName).toBe('crib');
    expect(d.output()).toContain('HTTP/2 client refused: connection closed with GOAWAY');
  }, 60_000);

  it('closes a connection streaming an endless header block after a first valid request, with flat memory', async () => {
    const before = memoryOf(d.proc.pid!);
    const flood = await continuationFlood(d.socket, 256 * MiB, true);
    const after = memoryOf(d.proc.pid!);
    // After a call was answered, the same bound holds on the same connection.
    expect(flood.answered).toContain(1);
    expect(flood.sent).toBeLessThan(16 * MiB);
    expect(flood.goAway).toEqual({ code: 0xb, debug: 'the header block of stream 3 is larger than 65536 bytes' });
    expect(after.hwm - before.hwm).toBeLessThan(50 * MiB);
    expect((await kubelet.runtime.Version({})).runtimeName).toBe('crib');
  }, 60_000);

  it('keeps HPACK tables at 4096 bytes: a long-lived connection with changing metadata keeps working', async () => {
    const v1 = criProto().runtime.v1;
    const rt = new v1.RuntimeService(`unix://${d.socket}`, grpc.credentials.createInsecure()) as unknown as {
      Version(req: object, md: grpc.Metadata, cb: (err: grpc.ServiceError | null) => void): void;
      close(): void;
    };
    const failures: string[] = [];
    try {
      for (let i = 0; i < 500; i++) {
        const md = new grpc.Metadata();
        // 25 values of ~210 bytes, cycling: a repeat refers back past what a 4096-byte table holds.
        md.set('x-probe', `value-${i % 25}-${'x'.repeat(200)}`);
        await new Promise<void>((resolve) => rt.Version({}, md, (err) => {
          if (err) failures.push(err.message);
          resolve();
        }));
      }
    } finally {
      rt.close();
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it('refuses oversized annotations, labels and names, naming the field, and lists keep working', async () => {
    const nineMiB = { 'example.com/blob': 'x'.repeat(9 * MiB) };
    for (const name of ['big-a', 'big-b']) {
      const err = await refusedPod(podConfig(name, { annotations: nineMiB, ...hostNetwork }));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toBe(
        `RunPodSandbox: config.annotations is ${9 * MiB + 16} bytes (keys and values), more than the limit of 262144 (limits.max_annotation_bytes)`);
    }
    const label = await refusedPod(podConfig('biglabel', { labels: { app: 'v'.repeat(1000) } }));
    expect(label.code).toBe(status.INVALID_ARGUMENT);
    expect(label.details).toMatch(/^RunPodSandbox: config\.labels\["app"\] "v+… \(1000 bytes\)" is 1000 characters, more than 253$/);
    const name = await refusedPod(podConfig('n'.repeat(300)));
    expect(name.details).toBe('RunPodSandbox: config.metadata.name "' + 'n'.repeat(128) + '… (300 bytes)" is 300 characters, more than 253');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('small', hostNetwork) });
    const containerErr = await rejection(d.cri.runtime.CreateContainer({
      podSandboxId, config: { metadata: { name: 'c', attempt: 0 }, image: { image }, annotations: nineMiB },
    }));
    expect(containerErr.details).toMatch(/^CreateContainer: config\.annotations is 9437200 bytes .*\(limits\.max_annotation_bytes\)$/);
    const { items } = await kubelet.runtime.ListPodSandbox({});
    expect(items.map((p: { id: string }) => p.id)).toEqual([podSandboxId]);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  }, 60_000);

  it('stops admitting large valid pods before they would make a list fail, and lists keep working', async () => {
    // Each pod carries 250 KiB of annotations, within the API server's limit; 70 of them would
    // be 17.5 MiB in one ListPodSandbox answer.
    const annotations = { 'example.com/config': 'a'.repeat(250 * 1024) };
    const created: string[] = [];
    try {
      let refusal: { code: number; details: string } | undefined;
      for (let i = 0; i < 70 && !refusal; i++) {
        try {
          created.push((await d.cri.runtime.RunPodSandbox({ config: podConfig(`full-${i}`, { annotations, ...hostNetwork }) })).podSandboxId);
        } catch (err) {
          refusal = err as { code: number; details: string };
        }
      }
      expect(refusal?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(refusal?.details).toMatch(/^RunPodSandbox: this pod would be listed with \d+ bytes of metadata, and the pods and containers on this node already take \d+ of the 12582912 bytes every list must fit in \(limits\.max_listed_bytes\)/);
      expect(created.length).toBeGreaterThan(40);
      const { items } = await kubelet.runtime.ListPodSandbox({});
      expect(items).toHaveLength(created.length);
      expect((await kubelet.runtime.ListPodSandboxStats({})).stats).toHaveLength(created.length);
    } finally {
      for (const podSandboxId of created.splice(0)) await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    }
    // Removing pods frees their share.
    const again = await d.cri.runtime.RunPodSandbox({ config: podConfig('after-full', { annotations, ...hostNetwork }) });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: again.podSandboxId });
  }, 120_000);

  it('reports at most 16 network interfaces of a pod in its stats and metrics', async () => {
    const { podSandboxId, containerId } = await runningContainer('ifaces');
    const netns = JSON.parse((await d.cri.runtime.PodSandboxStatus({ podSandboxId, verbose: true })).info.info).netns as string;
    const batch = Array.from({ length: 100 }, (_, i) => `link add flood${i}a type veth peer name flood${i}b`).join('\n');
    execFileSync('nsenter', [`--net=${netns}`, 'ip', '-batch', '-'], { input: `${batch}\n` });
    const { stats } = await kubelet.runtime.ListPodSandboxStats({});
    const mine = stats.find((s: { attributes: { id: string } }) => s.attributes.id === podSandboxId);
    expect(mine.linux.network.interfaces).toHaveLength(16);
    expect(mine.linux.network.interfaces[0].name).toBe(mine.linux.network.defaultInterface.name);
    const { podMetrics } = await kubelet.runtime.ListPodSandboxMetrics({});
    const pm = podMetrics.find((m: { podSandboxId: string }) => m.podSandboxId === podSandboxId);
    const ifaces = new Set(pm.metrics.filter((m: { name: string }) => m.name.startsWith('container_network_'))
      .map((m: { labelValues: string[] }) => m.labelValues[m.labelValues.length - 1]));
    expect(ifaces.size).toBe(16);
    expect(containerId).toBeTruthy();
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('answers a 1 MiB image name with a short status and a short log line', async () => {
    const huge = `docker.io/library/${'a'.repeat(MiB)}:latest`;
    const pull = await rejection(d.cri.image.PullImage({ image: { image: huge } }));
    expect(pull.code).toBe(status.INVALID_ARGUMENT);
    expect(pull.details).toBe(`PullImage: image.image is ${MiB + 25} bytes, more than the limit of 4096 (the longest image reference)`);
    // A message that quotes the input further down (not found) is cut by the RPC wrapper.
    const notFound = await rejection(d.cri.runtime.ContainerStatus({ containerId: 'f'.repeat(MiB) }));
    expect(notFound.code).toBe(status.NOT_FOUND);
    expect(notFound.details).toMatch(/^container f+… \(1048596 bytes\)$/);
    expect(Buffer.byteLength(notFound.details)).toBeLessThan(1100);
    await new Promise((r) => setTimeout(r, 200));
    const lines = d.output().split('\n');
    expect(lines.find((l) => l.includes('ContainerStatus') && l.includes('rpc failed'))).toBeDefined();
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(16 * 1024);
  });

  it('truncates 40 MiB of ExecSync output on each stream to fit one response, and succeeds', async () => {
    const { podSandboxId, containerId } = await runningContainer('execsync');
    const both = await kubelet.runtime.ExecSync({
      containerId, timeout: '60',
      cmd: ['/bin/sh', '-c', 'head -c 41943040 /dev/zero | tr "\\0" o; head -c 41943040 /dev/zero | tr "\\0" e >&2; exit 7'],
    });
    expect(both.exitCode).toBe(7);
    const half = Math.floor(EXEC_SYNC_OUTPUT_BUDGET / 2);
    expect(both.stdout.length).toBe(half);
    expect(both.stderr.length).toBe(EXEC_SYNC_OUTPUT_BUDGET - half);
    expect(both.stdout.every((b: number) => b === 0x6f)).toBe(true);
    expect(both.stderr.every((b: number) => b === 0x65)).toBe(true);
    // A small stream keeps everything; the large one gets the rest of the budget.
    const one = await kubelet.runtime.ExecSync({
      containerId, timeout: '60', cmd: ['/bin/sh', '-c', 'head -c 41943040 /dev/zero | tr "\\0" o; echo -n oops >&2'],
    });
    expect(one.stderr.toString()).toBe('oops');
    expect(one.stdout.length).toBe(EXEC_SYNC_OUTPUT_BUDGET - 4);
    expect(d.output()).toContain('ExecSync output truncated');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  }, 90_000);

  it('refuses a relative log directory at RunPodSandbox, creating nothing', async () => {
    const relative = `crib-relative-logs-${process.pid}`;
    try {
      const err = await refusedPod(podConfig('rel', { logDirectory: relative }));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toBe(`RunPodSandbox: config.logDirectory "${relative}" must be an absolute path without "." or ".." components`);
      // The daemon runs in this process's working directory: nothing may appear there.
      expect(existsSync(relative)).toBe(false);
      const dots = await refusedPod(podConfig('dots', { logDirectory: `${logDir}/../../etc` }));
      expect(dots.code).toBe(status.INVALID_ARGUMENT);
    } finally {
      await rm(relative, { recursive: true, force: true });
    }
  });

  it('refuses a pod name or namespace that would inject into CNI_ARGS', async () => {
    const config = podConfig('web');
    const err = await refusedPod({ ...config, metadata: { ...config.metadata, name: 'web;K8S_POD_NAMESPACE=kube-system' } });
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe(
      'RunPodSandbox: config.metadata.name "web;K8S_POD_NAMESPACE=kube-system" must consist of letters, digits, \'-\' and \'.\', and start and end with a letter or digit');
    const ns = await refusedPod({ ...config, metadata: { ...config.metadata, namespace: 'a=b' } });
    expect(ns.details).toMatch(/^RunPodSandbox: config\.metadata\.namespace "a=b" must consist of letters, digits and '-'/);
    expect((await kubelet.runtime.ListPodSandbox({})).items).toEqual([]);
  });

  it('keeps an earlier streaming URL valid through a flood of Exec RPCs', async () => {
    const target = await runningContainer('flooded');
    const bystander = await runningContainer('bystander');
    const { url } = await kubelet.runtime.Exec({ containerId: target.containerId, cmd: ['echo', 'still-valid'], stdout: true });
    let refused = 0;
    let refusal = '';
    for (let round = 0; round < 43; round++) {
      const calls = Array.from({ length: 100 }, () =>
        d.cri.runtime.Exec({ containerId: target.containerId, cmd: ['true'], stdout: true }).then(
          () => undefined,
          (err: { code: number; details: string }) => {
            expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
            refused++;
            refusal = err.details;
          }));
      await Promise.all(calls);
    }
    expect(refused).toBeGreaterThan(4000);
    expect(refusal).toMatch(/^too many streaming requests outstanding: container [0-9a-f]{64} already has 128 unused URLs \(limits\.max_stream_tokens_per_target = 128\)/);
    // Other containers are not locked out, and the URL handed out before the flood still works.
    const other = await kubelet.runtime.Exec({ containerId: bystander.containerId, cmd: ['echo', 'bystander'], stdout: true });
    expect(await wsExecStdout(other.url)).toBe('bystander\n');
    expect(await wsExecStdout(url)).toBe('still-valid\n');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: target.podSandboxId });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: bystander.podSandboxId });
  }, 90_000);
});
