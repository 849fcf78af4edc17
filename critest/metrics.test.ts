// The Prometheus endpoint end to end: off unless metrics.address is set; once on, a scrape after
// real calls shows the RPC, pull, pod/container/monitor and process metrics moving, and a daemon
// restart reports what it recovered.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../src/config/config.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { freePort, startRegistry, type TestRegistry } from '../test-support/registry.js';

/** Every sample of a Prometheus text exposition, keyed "name{labels}" as printed. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function scrape(port: number, path = '/metrics'): Promise<{ status: number; text: string; type: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') ?? '' };
}

const refused = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = connect(port, '127.0.0.1');
  s.once('connect', () => {
    s.destroy();
    resolve(false);
  });
  s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
});

describe('metrics', { timeout: 300_000 }, () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let port: number;
  let logDir: string;
  let image: string;

  beforeAll(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'crib-metrics-logs-'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
  });
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    await rm(logDir, { recursive: true, force: true });
  });

  it('validates metrics.address', () => {
    expect(configFromObject({}).metrics.address).toBeUndefined();
    expect(configFromObject({ metrics: { address: '127.0.0.1:9464' } }).metrics.address).toBe('127.0.0.1:9464');
    expect(configFromObject({ metrics: { address: '[::1]:9464' } }).metrics.address).toBe('[::1]:9464');
    expect(() => configFromObject({ metrics: { address: '9464' } })).toThrow('metrics.address: a host:port like "127.0.0.1:9464"');
    expect(() => configFromObject({ metrics: { address: '127.0.0.1:70000' } })).toThrow('metrics.address: the port must be in 0..65535');
    expect(() => configFromObject({ metrics: { adress: 'x' } })).toThrow('unknown key "metrics.adress"');
  });

  it('serves nothing when metrics.address is not set', async () => {
    port = await freePort();
    const plain = await startDaemon();
    try {
      await plain.cri.runtime.Version({});
      expect(await refused(port)).toBe(true);
      expect(plain.output()).not.toContain('metrics serving');
    } finally {
      await plain.cleanup();
    }
  });

  it('counts RPCs, errors, pulls, pods, containers and monitors; restarts report what they recovered', async () => {
    port = await freePort();
    d = await startDaemon({ toml: `[metrics]\naddress = "127.0.0.1:${port}"\n` });
    expect(d.output()).toContain('metrics serving');

    const before = samples((await scrape(port)).text);
    // Default process metrics: memory and event-loop lag.
    expect(before.get('process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(before.has('nodejs_eventloop_lag_seconds')).toBe(true);
    expect(before.get('crib_pods{state="ready"}')).toBe(0);
    expect(before.get('crib_containers{state="running"}')).toBe(0);
    expect(before.get('crib_monitors_alive')).toBe(0);
    expect(before.get('crib_image_pull_bytes_total')).toBe(0);
    const versionCount = 'crib_rpc_duration_seconds_count{method="runtime.v1.RuntimeService/Version"}';
    const v0 = before.get(versionCount) ?? 0;

    await d.cri.runtime.Version({});
    await d.cri.runtime.Version({});
    await expect(d.cri.runtime.ContainerStatus({ containerId: 'f'.repeat(64) })).rejects.toMatchObject({ code: 5 });
    await expect(d.cri.image.PullImage({ image: { image: `${registry.host}/library/missing:1` } })).rejects.toThrow();
    await d.cri.image.PullImage({ image: { image } });
    const podConfig = podConfigFactory('metrics', logDir)('m');
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig });
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId, sandboxConfig: podConfig,
      config: { metadata: { name: 'c', attempt: 0 }, image: { image }, command: ['/bin/sleep', '1000'], logPath: 'c.log' },
    });
    await d.cri.runtime.StartContainer({ containerId });

    const res = await scrape(port);
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/plain');
    const after = samples(res.text);
    expect(after.get(versionCount)).toBe(v0 + 2);
    expect(after.get('crib_rpc_duration_seconds_bucket{le="+Inf",method="runtime.v1.RuntimeService/Version"}')).toBe(v0 + 2);
    expect(after.get('crib_rpc_errors_total{method="runtime.v1.RuntimeService/ContainerStatus",code="NOT_FOUND"}')).toBe(1);
    expect(after.get('crib_rpc_errors_total{method="runtime.v1.ImageService/PullImage",code="NOT_FOUND"}')).toBe(1);
    expect(after.get('crib_image_pull_failures_total')).toBe(1);
    expect(after.get('crib_image_pull_duration_seconds_count{result="success"}')).toBe(1);
    expect(after.get('crib_image_pull_duration_seconds_count{result="failure"}')).toBe(1);
    const { image: pulled } = await d.cri.image.ImageStatus({ image: { image } });
    // Every layer byte was downloaded (the config and manifest are not layers).
    expect(after.get('crib_image_pull_bytes_total')).toBeGreaterThan(Number(pulled.size) * 0.9);
    expect(after.get('crib_pods{state="ready"}')).toBe(1);
    expect(after.get('crib_containers{state="running"}')).toBe(1);
    expect(after.get('crib_monitors_alive')).toBe(1);
    expect(after.get('crib_recovered{kind="container"}')).toBe(0);

    expect((await scrape(port, '/')).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status).toBe(405);

    // A restart takes over the pod and its running container, and counts them.
    await d.stop();
    expect(await refused(port)).toBe(true);
    d = await startDaemon({ dir: d.dir, toml: `[metrics]\naddress = "127.0.0.1:${port}"\n` });
    const restarted = samples((await waitFor('metrics after restart', () => scrape(port).catch(() => undefined))).text);
    expect(restarted.get('crib_recovered{kind="pod"}')).toBe(1);
    expect(restarted.get('crib_recovered{kind="container"}')).toBe(1);
    expect(restarted.get('crib_monitors_alive')).toBe(1);
    expect(restarted.get('crib_containers{state="running"}')).toBe(1);
    await d.cri.runtime.StopContainer({ containerId, timeout: '0' });
    const stopped = samples((await scrape(port)).text);
    expect(stopped.get('crib_containers{state="exited"}')).toBe(1);
    expect(stopped.get('crib_monitors_alive')).toBe(0);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });
});
