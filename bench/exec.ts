// Benchmark (not a test): exec and port-forward through the CRI.
//   npm run bench:exec   (BENCH_N=200 execs per mode; BENCH_MB=100 MiB per port-forward transfer,
//                         BENCH_FORWARDS=5 transfers, median reported)
// For each runtime: ExecSync of /bin/true, streaming exec of /bin/true (Exec RPC + SPDY upgrade +
// streams + exit status, as kubectl exec does), median/p95 per call; then the throughput of
// port-forwarded HTTP downloads of BENCH_MB MiB from busybox httpd in the pod (median of
// BENCH_FORWARDS, with the slowest and fastest: single transfers swing widely on a busy machine;
// the runtimes take turns) and the daemon's CPU time per GiB forwarded. containerd (Debian's
// package, CRI plugin, CNI bridge plugin) runs in the same run when installed.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { CriClient } from '../test-support/cri-client.js';
import { waitFor } from '../test-support/daemon.js';
import { withBenchTargets, type BenchTarget } from '../test-support/bench-targets.js';
import type { Readable } from 'node:stream';
import { openPortForwardStreams, openRemoteCommandStreams, spdyUpgrade } from '../test-support/spdy-client.js';
import { PORT_FORWARD_PROTOCOL_V1, REMOTE_COMMAND_V4 } from '../src/streaming/protocol/constants.js';

const N = Number(process.env.BENCH_N ?? 200);
const MB = Number(process.env.BENCH_MB ?? 100);
const FORWARD_RUNS = Number(process.env.BENCH_FORWARDS ?? 5);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const since = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

interface Result {
  name: string;
  execSync: number[];
  streamExec: number[];
  forwardMBps: number[];
  /** The daemon's CPU seconds per GiB port-forwarded. */
  forwardCpuPerGiB: number;
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

/** A target with its benchmark pod: a sleeper to exec in, and httpd serving the big file. */
interface Prepared {
  target: BenchTarget;
  podSandboxId: string;
  sleeper: string;
}

let seq = 0;
async function prepare(target: BenchTarget): Promise<Prepared> {
  const { cri, image, name } = target;
  const n = seq++;
  const config = { metadata: { name: `bench-exec-${n}`, namespace: 'bench', uid: `bench-exec-${process.pid}-${n}`, attempt: 0 }, linux: {}, logDirectory: '' };
  const { podSandboxId } = await cri.runtime.RunPodSandbox({ config });
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
  await waitFor(`${name}: httpd with the ${MB} MiB file`, async () => (await forwardedGet(cri, podSandboxId, 8080, '/ready')).bytes > 0, 60_000);
  return { target, podSandboxId, sleeper };
}

async function removePod(p: Prepared): Promise<void> {
  await p.target.cri.runtime.StopPodSandbox({ podSandboxId: p.podSandboxId }).catch(() => undefined);
  await p.target.cri.runtime.RemovePodSandbox({ podSandboxId: p.podSandboxId }).catch((err: unknown) => console.error('remove pod:', err));
}

async function measureExec({ target: { cri, name }, sleeper }: Prepared): Promise<{ execSync: number[]; streamExec: number[] }> {
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
  return { execSync, streamExec };
}

/** CPU seconds a process and its reaped children have used (utime+stime+cutime+cstime). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return ticks / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/**
 * Port-forward downloads, alternating between the targets (one warm-up each first), so every
 * target sees the same background load. Also what each daemon spent in CPU per GiB forwarded:
 * on a shared 2-core machine that decides throughput once something else wants the CPU.
 */
async function measureForwards(pods: Prepared[]): Promise<Map<Prepared, { mbps: number[]; cpuPerGiB: number }>> {
  const out = new Map(pods.map((p) => [p, { mbps: [] as number[], cpu: 0, bytes: 0 }]));
  for (const p of pods) await forwardedGet(p.target.cri, p.podSandboxId, 8080, '/big');
  for (let i = 0; i < FORWARD_RUNS; i++) {
    for (const p of pods) {
      console.error(`${p.target.name}: port-forward ${MB} MiB (${i + 1}/${FORWARD_RUNS})`);
      const cpu0 = cpuSeconds(p.target.daemonPid);
      const { bytes, seconds } = await forwardedGet(p.target.cri, p.podSandboxId, 8080, '/big');
      const r = out.get(p)!;
      r.cpu += cpuSeconds(p.target.daemonPid) - cpu0;
      r.bytes += bytes;
      if (bytes < MB * 1048576) throw new Error(`${p.target.name}: port-forward delivered ${bytes} bytes, expected at least ${MB} MiB`);
      r.mbps.push(bytes / 1048576 / seconds);
    }
  }
  return new Map([...out].map(([p, r]) => [p, { mbps: r.mbps, cpuPerGiB: r.cpu / (r.bytes / 2 ** 30) }]));
}

function print(results: Result[]): void {
  const line = (label: string, f: (r: Result) => string) => console.log(label.padEnd(40) + results.map((r) => f(r).padStart(24)).join(''));
  line('', (r) => r.name);
  line('ExecSync /bin/true (median/p95 ms)', (r) => `${pct(r.execSync, 0.5).toFixed(1)} / ${pct(r.execSync, 0.95).toFixed(1)}`);
  line('streaming exec /bin/true (median/p95 ms)', (r) => `${pct(r.streamExec, 0.5).toFixed(1)} / ${pct(r.streamExec, 0.95).toFixed(1)}`);
  line(`port-forward ${MB} MiB (MiB/s med [min-max])`, (r) =>
    `${pct(r.forwardMBps, 0.5).toFixed(0)} [${Math.min(...r.forwardMBps).toFixed(0)}-${Math.max(...r.forwardMBps).toFixed(0)}]`);
  line('port-forward daemon CPU (s per GiB)', (r) => r.forwardCpuPerGiB.toFixed(2));
  if (results.length === 2) {
    const [a, b] = results as [Result, Result];
    console.log(`\ncrib / containerd: ExecSync median ${(pct(a.execSync, 0.5) / pct(b.execSync, 0.5)).toFixed(2)}x, ` +
      `streaming exec median ${(pct(a.streamExec, 0.5) / pct(b.streamExec, 0.5)).toFixed(2)}x, ` +
      `port-forward throughput median ${(pct(a.forwardMBps, 0.5) / pct(b.forwardMBps, 0.5)).toFixed(2)}x, ` +
      `port-forward CPU per GiB ${(a.forwardCpuPerGiB / b.forwardCpuPerGiB).toFixed(2)}x`);
  }
}

async function main(): Promise<void> {
  const results = await withBenchTargets({ bridge: 'cribbenchexec', subnet: '10.248.0.0/16' }, async (targets) => {
    const pods: Prepared[] = [];
    try {
      for (const t of targets) pods.push(await prepare(t));
      const execs: Awaited<ReturnType<typeof measureExec>>[] = [];
      for (const p of pods) execs.push(await measureExec(p));
      const forwards = await measureForwards(pods);
      return pods.map((p, i): Result => ({
        name: p.target.name, ...execs[i]!, forwardMBps: forwards.get(p)!.mbps, forwardCpuPerGiB: forwards.get(p)!.cpuPerGiB,
      }));
    } finally {
      for (const p of pods) await removePod(p);
    }
  });
  console.log(`\nN=${N} per exec mode; busybox containers; port-forward: ${FORWARD_RUNS} HTTP downloads of ${MB} MiB\n`);
  print(results);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
