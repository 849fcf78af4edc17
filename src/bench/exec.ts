// Benchmark (not a test): exec and port-forward through the CRI.
//   npm run bench:exec   (BENCH_N=200 execs per mode; BENCH_MB=100 for the port-forward transfer)
// For each runtime: ExecSync of /bin/true, streaming exec of /bin/true (Exec RPC + SPDY upgrade +
// streams + exit status, as kubectl exec does), median/p95 per call; then the throughput of one
// port-forwarded HTTP download of BENCH_MB MiB from busybox httpd in the pod. containerd (Debian's
// package, CRI plugin, CNI bridge plugin) runs in the same run when installed.
import type { CriClient } from '../../test-support/cri-client.js';
import { waitFor } from '../../test-support/daemon.js';
import { runOnBenchTargets } from '../../test-support/bench-targets.js';
import type { Readable } from 'node:stream';
import { openPortForwardStreams, openRemoteCommandStreams, spdyUpgrade } from '../../test-support/spdy-client.js';
import { PORT_FORWARD_PROTOCOL_V1, REMOTE_COMMAND_V4 } from '../streaming/protocol/constants.js';

const N = Number(process.env.BENCH_N ?? 200);
const MB = Number(process.env.BENCH_MB ?? 100);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const since = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

interface Result {
  name: string;
  execSync: number[];
  streamExec: number[];
  forwardMBps: number;
}

/**
 * Reads a stream until it ends or is reset. kubelet-style servers (containerd's included) write
 * the status and then close the connection, which resets the streams they did not FIN; what
 * arrived before the reset is the answer, as client-go reads it.
 */
function readUntilGone(stream: Readable): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = () => resolve(Buffer.concat(chunks));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

async function streamingExec(cri: CriClient, containerId: string, cmd: string[]): Promise<string> {
  const { url } = await cri.runtime.Exec({ containerId, cmd, stdout: true });
  const { connection, protocol } = await spdyUpgrade(url, [REMOTE_COMMAND_V4]);
  try {
    const s = await openRemoteCommandStreams(connection, protocol, { stdin: false, stdout: true, stderr: false, tty: false });
    const [, status] = await Promise.all([readUntilGone(s.stdout!), readUntilGone(s.error)]);
    return status.toString();
  } finally {
    await connection.close();
  }
}

/** One HTTP/1.0 GET through a port-forward; returns the bytes received and the seconds taken. */
async function forwardedGet(cri: CriClient, podSandboxId: string, port: number, path: string): Promise<{ bytes: number; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const { url } = await cri.runtime.PortForward({ podSandboxId, port: [port] });
  const { connection } = await spdyUpgrade(url, [PORT_FORWARD_PROTOCOL_V1]);
  try {
    const { data, error } = await openPortForwardStreams(connection, port, '0');
    let bytes = 0;
    const done = new Promise<void>((resolve, reject) => {
      data.on('data', (c: Buffer) => (bytes += c.length));
      data.once('end', resolve);
      data.once('error', reject);
    });
    const err = readUntilGone(error);
    data.end(`GET ${path} HTTP/1.0\r\n\r\n`);
    await done;
    const e = (await err).toString();
    if (e) throw new Error(`port-forward failed: ${e}`);
    return { bytes, seconds: since(t0) / 1000 };
  } finally {
    await connection.close();
  }
}

let seq = 0;
async function measure(name: string, cri: CriClient, image: string): Promise<Result> {
  const n = seq++;
  const config = { metadata: { name: `bench-exec-${n}`, namespace: 'bench', uid: `bench-exec-${process.pid}-${n}`, attempt: 0 }, linux: {}, logDirectory: '' };
  const { podSandboxId } = await cri.runtime.RunPodSandbox({ config });
  try {
    const start = async (cname: string, script: string) => {
      const { containerId } = await cri.runtime.CreateContainer({
        podSandboxId, sandboxConfig: config,
        config: { metadata: { name: cname, attempt: 0 }, image: { image }, command: ['/bin/sh', '-c', script] },
      });
      await cri.runtime.StartContainer({ containerId });
      return containerId as string;
    };
    const sleeper = await start('sleeper', 'exec sleep 100000');
    await start('web', `mkdir -p /www && dd if=/dev/zero of=/www/big bs=1048576 count=${MB} 2>/dev/null && echo ok > /www/ready && exec httpd -f -p 8080 -h /www`);

    console.error(`${name}: ExecSync x${N}`);
    for (let i = 0; i < 5; i++) await cri.runtime.ExecSync({ containerId: sleeper, cmd: ['/bin/true'], timeout: '10' });
    const execSync: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = process.hrtime.bigint();
      const r = await cri.runtime.ExecSync({ containerId: sleeper, cmd: ['/bin/true'], timeout: '10' });
      execSync.push(since(t0));
      if (r.exitCode !== 0) throw new Error(`${name}: ExecSync /bin/true exited ${r.exitCode}`);
    }

    console.error(`${name}: streaming exec x${N}`);
    for (let i = 0; i < 5; i++) await streamingExec(cri, sleeper, ['/bin/true']);
    const streamExec: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = process.hrtime.bigint();
      const status = await streamingExec(cri, sleeper, ['/bin/true']);
      streamExec.push(since(t0));
      if (!status.includes('"Success"')) throw new Error(`${name}: streaming exec of /bin/true: ${status}`);
    }

    console.error(`${name}: port-forward ${MB} MiB`);
    await waitFor(`${name}: httpd with the ${MB} MiB file`, async () => (await forwardedGet(cri, podSandboxId, 8080, '/ready')).bytes > 0, 60_000);
    const { bytes, seconds } = await forwardedGet(cri, podSandboxId, 8080, '/big');
    if (bytes < MB * 1048576) throw new Error(`${name}: port-forward delivered ${bytes} bytes, expected at least ${MB} MiB`);
    return { name, execSync, streamExec, forwardMBps: bytes / 1048576 / seconds };
  } finally {
    await cri.runtime.StopPodSandbox({ podSandboxId }).catch(() => undefined);
    await cri.runtime.RemovePodSandbox({ podSandboxId }).catch((err: unknown) => console.error('remove pod:', err));
  }
}

function print(results: Result[]): void {
  const line = (label: string, f: (r: Result) => string) => console.log(label.padEnd(40) + results.map((r) => f(r).padStart(24)).join(''));
  line('', (r) => r.name);
  line('ExecSync /bin/true (median/p95 ms)', (r) => `${pct(r.execSync, 0.5).toFixed(1)} / ${pct(r.execSync, 0.95).toFixed(1)}`);
  line('streaming exec /bin/true (median/p95 ms)', (r) => `${pct(r.streamExec, 0.5).toFixed(1)} / ${pct(r.streamExec, 0.95).toFixed(1)}`);
  line(`port-forward ${MB} MiB download (MiB/s)`, (r) => r.forwardMBps.toFixed(1));
  if (results.length === 2) {
    const [a, b] = results as [Result, Result];
    console.log(`\ncrib / containerd: ExecSync median ${(pct(a.execSync, 0.5) / pct(b.execSync, 0.5)).toFixed(2)}x, ` +
      `streaming exec median ${(pct(a.streamExec, 0.5) / pct(b.streamExec, 0.5)).toFixed(2)}x, ` +
      `port-forward throughput ${(a.forwardMBps / b.forwardMBps).toFixed(2)}x`);
  }
}

async function main(): Promise<void> {
  const results = await runOnBenchTargets({ bridge: 'cribbenchexec', subnet: '10.248.0.0/16' }, (t) => measure(t.name, t.cri, t.image));
  console.log(`\nN=${N} per exec mode; busybox containers; port-forward of one ${MB} MiB HTTP download\n`);
  print(results);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
