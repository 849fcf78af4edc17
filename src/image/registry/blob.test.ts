import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../../../test-support/fault-proxy.js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, busyboxRootfsLayer, layerFromTar, pushImage, type BuiltImage } from '../../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../../test-support/registry.js';
import { DataLossError, DeadlineExceededError, NotFoundError, UnavailableError } from '../../errors.js';
import { ContentStore } from '../content-store.js';
import { parseReference } from '../reference.js';
import { RegistryClient, type ResolvedImage } from './client.js';

let registry: TestRegistry;
let proxy: FaultProxy;
let image: BuiltImage;
let resolved: ResolvedImage;
const clients: RegistryClient[] = [];

function client(config: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({ retries: 3, backoffMs: 20, ...config });
  clients.push(c);
  return c;
}

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.url);
  image = buildImage({ layers: [await busyboxRootfsLayer()] });
  await pushImage(registry, 'library/busybox', 'latest', image);
  resolved = await client().resolve(parseReference(`${proxy.host}/library/busybox`));
});

afterEach(() => {
  proxy.clearRules();
  proxy.requests.length = 0;
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await proxy?.stop();
  await registry?.stop();
});

const layer = () => image.layers[0]!;
const layerPath = () => new RegExp(`/blobs/${layer().digest}`);

describe('RegistryClient.openBlob', () => {
  it('streams a layer byte for byte', async () => {
    const bytes = await readAll(await client().openBlob(resolved, resolved.layers[0]!));
    expect(bytes.equals(layer().blob)).toBe(true);
    expect(layer().size).toBeGreaterThan(500_000);
  });

  it('resumes with a Range request after the connection is cut mid-blob', async () => {
    proxy.addRule({ path: layerPath(), action: 'cut', afterBytes: 200_000, times: 1 });
    const stream = await client().openBlob(resolved, resolved.layers[0]!);
    const bytes = await readAll(stream);
    expect(bytes.equals(layer().blob)).toBe(true);
    expect(stream.resumes).toBe(1);
    const gets = proxy.requests.filter((r) => layerPath().test(r.path));
    expect(gets.map((r) => r.range)).toEqual([undefined, 'bytes=200000-']);
  });

  it('restarts and skips delivered bytes when the server ignores Range', async () => {
    proxy.addRule({ path: layerPath(), action: 'cut', afterBytes: 300_000, times: 2 });
    proxy.addRule({ path: layerPath(), action: 'pass', stripRange: true });
    // Two cuts at 300 000 bytes each (the second on a Range request, so at 600 000 in all); the
    // third request reaches a server ignoring Range, so its first 600 000 bytes are skipped.
    const stream = await client().openBlob(resolved, resolved.layers[0]!);
    const bytes = await readAll(stream);
    expect(bytes.equals(layer().blob)).toBe(true);
    expect(stream.resumes).toBe(2);
    const gets = proxy.requests.filter((r) => layerPath().test(r.path));
    expect(gets.map((r) => r.range)).toEqual([undefined, 'bytes=300000-', 'bytes=600000-']);
  });

  it('retries a 500 and then succeeds', async () => {
    proxy.addRule({ path: layerPath(), action: 'error500', times: 1 });
    const bytes = await readAll(await client().openBlob(resolved, resolved.layers[0]!));
    expect(bytes.equals(layer().blob)).toBe(true);
    expect(proxy.count(layerPath())).toBe(2);
  });

  it('gives up with Unavailable after the retries when the registry keeps failing', async () => {
    proxy.addRule({ path: layerPath(), action: 'error500' });
    const err = await client({ retries: 2 }).openBlob(resolved, resolved.layers[0]!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain(layer().digest);
    expect((err as Error).message).toMatch(/500 UNKNOWN: injected server failure/);
    expect(proxy.count(layerPath())).toBe(3);
  });

  it('fails a stream cut more often than the retry budget with Unavailable', async () => {
    proxy.addRule({ path: layerPath(), action: 'cut', afterBytes: 10_000 });
    const stream = await client({ retries: 2 }).openBlob(resolved, resolved.layers[0]!);
    const err = await readAll(stream).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain(layer().digest);
  });

  it('fails a stalled download with DeadlineExceeded naming the layer', async () => {
    proxy.addRule({ path: layerPath(), action: 'stall', afterBytes: 50_000 });
    const started = Date.now();
    const stream = await client({ progressTimeoutMs: 1500 }).openBlob(resolved, resolved.layers[0]!);
    const err = await readAll(stream).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect((err as Error).message).toContain(`pull of layer ${layer().digest} stalled: no bytes for 1.5s`);
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(15_000);
  });

  it('fails a config download stalled after its headers within the progress timeout, naming the config', async () => {
    const configPath = new RegExp(`/blobs/${image.config.digest}`);
    proxy.addRule({ path: configPath, action: 'stall', afterBytes: 0 });
    const started = Date.now();
    const err = await client({ progressTimeoutMs: 1500 }).fetchConfig(resolved).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect((err as Error).message).toContain(`pull of config ${image.config.digest} stalled: no bytes for 1.5s after 0 bytes`);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('gives up on a blob request the registry never answers after the progress timeout, not after every retry', async () => {
    // Each attempt alone would wait request_timeout (10 s) for headers, four attempts in all.
    const configPath = new RegExp(`/blobs/${image.config.digest}`);
    proxy.addRule({ path: configPath, action: 'hang' });
    const started = Date.now();
    const err = await client({ progressTimeoutMs: 1500, requestTimeoutMs: 10_000 }).fetchConfig(resolved).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect((err as Error).message).toBe(`pull of config ${image.config.digest} stalled: registry ${proxy.host} sent no answer for 1.5s` +
      ' (raise image.pull_progress_timeout if the registry is this slow)');
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(8000);
    expect(proxy.count(configPath)).toBe(1);
  });

  it('does not count a slow consumer as a stall', async () => {
    // 8 MiB of noise: far more than the stream and socket buffers, so backpressure really happens.
    const big = buildImage({ layers: [await layerFromTar(randomBytes(8 << 20), 'none')] });
    await pushImage(registry, 'big/blob', '1', big);
    // The pause is well past the progress timeout, which is still generous for a loaded machine,
    // and long enough that counting it would put the average under pull_min_rate (4 MiB/s, a
    // rate loopback beats by far while the consumer reads).
    const c = client({ progressTimeoutMs: 1000, minBytesPerSecond: 4 << 20, minRateGraceMs: 1000 });
    const r = await c.resolve(parseReference(`${proxy.host}/big/blob:1`));
    const stream = await c.openBlob(r, r.layers[0]!);
    const chunks: Buffer[] = [];
    let paused = false;
    for await (const c of stream) {
      chunks.push(c as Buffer);
      if (!paused) {
        paused = true;
        await new Promise((r) => setTimeout(r, 2500));
      }
    }
    expect(Buffer.concat(chunks).equals(big.layers[0]!.blob)).toBe(true);
  });

  it('aborts a layer trickling a byte at a time under pull_min_rate once the grace has passed, and removes the partial file', async () => {
    // One byte every 100 ms never lets the 1.5 s progress timeout fire: only the average catches it.
    proxy.addRule({ path: layerPath(), action: 'trickle', afterBytes: 0, trickleBytes: 1, trickleMs: 100 });
    const root = mkdtempSync(join(tmpdir(), `crib-trickle-${process.pid}-`));
    try {
      const store = new ContentStore(root);
      await store.init();
      const c = client({ progressTimeoutMs: 1500, minBytesPerSecond: 1024, minRateGraceMs: 1000 });
      const started = Date.now();
      const ingest = store.ingest(layer(), () => c.openBlob(resolved, resolved.layers[0]!));
      // Without an overall deadline the trickle would run for days: give up waiting after 10 s.
      const err = await Promise.race([
        ingest.then(() => 'finished', (e: unknown) => e),
        new Promise((r) => setTimeout(() => r('still downloading after 10s'), 10_000)),
      ]);
      const elapsed = Date.now() - started;
      expect(err).toBeInstanceOf(DeadlineExceededError);
      const message = (err as Error).message;
      expect(message).toMatch(new RegExp(`^pull of layer ${layer().digest} too slow: \\d+ bytes received in \\d+(\\.\\d)?s \\(\\d+ of ${layer().size} bytes delivered\\)`));
      expect(message).toContain('under the average of 1 KiB/s required after the first 1s');
      expect(message).toContain('lower image.pull_min_rate or raise image.pull_min_rate_grace');
      const received = Number(/ (\d+) bytes received/.exec(message)![1]);
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThan(1024);
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(8000);
      // Not resumed (a slow registry is not a broken connection), and the connection was dropped.
      expect(proxy.count(layerPath())).toBe(1);
      await new Promise((r) => setTimeout(r, 200));
      expect(proxy.requests.find((r) => layerPath().test(r.path))?.closedEarly).toBe(true);
      expect(readdirSync(join(root, 'content', 'ingest'))).toEqual([]);
      expect(existsSync(join(root, 'content', 'sha256', layer().digest.slice(7)))).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('holds a config download to pull_min_rate as well, naming the config', async () => {
    const configPath = new RegExp(`/blobs/${image.config.digest}`);
    proxy.addRule({ path: configPath, action: 'trickle', afterBytes: 10, trickleBytes: 1, trickleMs: 100 });
    const started = Date.now();
    const err = await client({ progressTimeoutMs: 1500, minBytesPerSecond: 1024, minRateGraceMs: 500 }).fetchConfig(resolved)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect((err as Error).message).toMatch(new RegExp(`^pull of config ${image.config.digest} too slow: \\d+ bytes received`));
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it('lets a slow download that keeps up pull_min_rate run past the grace and finish', async () => {
    // 4 KiB at 512 bytes per 100 ms: about 0.8 s at five times the floor, well past the grace.
    const small = buildImage({ layers: [await layerFromTar(randomBytes(4096), 'none')] });
    await pushImage(registry, 'slow/blob', '1', small);
    const c = client({ progressTimeoutMs: 1500, minBytesPerSecond: 1024, minRateGraceMs: 300 });
    const r = await c.resolve(parseReference(`${proxy.host}/slow/blob:1`));
    proxy.addRule({ path: new RegExp(`/blobs/${small.layers[0]!.digest}`), action: 'trickle', afterBytes: 0, trickleBytes: 512, trickleMs: 100 });
    const started = Date.now();
    const bytes = await readAll(await c.openBlob(r, r.layers[0]!));
    expect(bytes.equals(small.layers[0]!.blob)).toBe(true);
    expect(Date.now() - started).toBeGreaterThan(500);
  });

  it('answers NotFound for a missing blob and DataLoss for a corrupted config', async () => {
    proxy.addRule({ path: layerPath(), action: 'notFound' });
    const missing = await client().openBlob(resolved, resolved.layers[0]!).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as Error).message).toContain(layer().digest);
    proxy.addRule({ path: new RegExp(`/blobs/${image.config.digest}`), action: 'corrupt', afterBytes: 5 });
    const corrupt = await client().fetchConfig(resolved).catch((e: unknown) => e);
    expect(corrupt).toBeInstanceOf(DataLossError);
    expect((corrupt as Error).message).toContain(image.config.digest);
  });

  it('stops at once, without retrying, when the caller aborts', async () => {
    proxy.addRule({ path: layerPath(), action: 'stall', afterBytes: 50_000 });
    const ac = new AbortController();
    const stream = await client({ progressTimeoutMs: 30_000 }).openBlob(resolved, resolved.layers[0]!, { signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    const started = Date.now();
    const err = await readAll(stream).catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(proxy.count(layerPath())).toBe(1);
  });

  it('starts at an offset when asked', async () => {
    const bytes = await readAll(await client().openBlob(resolved, resolved.layers[0]!, { offset: 1000 }));
    expect(bytes.equals(layer().blob.subarray(1000))).toBe(true);
    expect(proxy.requests.at(-1)?.range).toBe('bytes=1000-');
  });
});
