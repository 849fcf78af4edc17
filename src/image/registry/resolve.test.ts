import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, layerFromEntries, pushBusybox, MT, platformImage, pushImage, pushIndex, pushManifestBytes, sha256, type BuiltImage } from '../../../test-support/image-builder.js';
import { startFaultProxy } from '../../../test-support/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../../../test-support/registry.js';
import { createServer, type Socket } from 'node:net';
import { DataLossError, DeadlineExceededError, FailedPreconditionError, NotFoundError } from '../../errors.js';
import { parseReference } from '../reference.js';
import { RegistryClient } from './client.js';
import { hostPlatform } from './platform.js';

let registry: TestRegistry;
let client: RegistryClient;
let busybox: BuiltImage;
let busyboxDigest: string;

beforeAll(async () => {
  registry = await startRegistry();
  client = new RegistryClient({ retries: 1, backoffMs: 20 });
  ({ image: busybox, digest: busyboxDigest } = await pushBusybox(registry, 'library/busybox', '1', { config: { User: '1000' } }));
});

afterAll(async () => {
  await client?.close();
  await registry?.stop();
});

const ref = (s: string) => parseReference(`${registry.host}/${s}`);

describe('RegistryClient.resolve', () => {
  it('resolves an OCI image manifest by tag over plain http on loopback', async () => {
    const r = await client.resolve(ref('library/busybox:1'));
    expect(r.manifestDigest).toBe(busyboxDigest);
    expect(r.manifestDigest).toBe(busybox.manifest.digest);
    expect(r.mediaType).toBe(MT.ociManifest);
    expect(r.manifestBytes.equals(busybox.manifest.bytes)).toBe(true);
    expect(r.configDescriptor.digest).toBe(busybox.config.digest);
    expect(r.layers.map((l) => l.digest)).toEqual(busybox.layers.map((l) => l.digest));
    expect(r.indexDigest).toBeUndefined();
    expect(r.endpoint.host).toBe(registry.host);
    const config = await client.fetchConfig(r);
    expect(config.equals(busybox.config.bytes)).toBe(true);
    expect(JSON.parse(config.toString()).config.User).toBe('1000');
  });

  it('resolves a Docker schema 2 manifest, also under localhost', async () => {
    const layer = await layerFromEntries([{ type: 'file', path: 'hello', content: 'docker\n' }]);
    const img = buildImage({ layers: [layer], mediaTypes: 'docker' });
    await pushImage(registry, 'docker/app', 'v1', img);
    const r = await client.resolve(parseReference(`localhost:${registry.host.split(':')[1]}/docker/app:v1`));
    expect(r.mediaType).toBe(MT.dockerManifest);
    expect(r.manifestDigest).toBe(img.manifest.digest);
    expect(r.layers[0]!.mediaType).toBe(MT.dockerLayerGzip);
  });

  it('picks the host platform from a multi-arch OCI index and a Docker manifest list', async () => {
    const host = hostPlatform();
    const platforms = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ];
    for (const family of ['oci', 'docker'] as const) {
      const images = await Promise.all(platforms.map((p) => platformImage(p, family)));
      const { digest } = await pushIndex(registry, `multi/${family}`, 'latest', images.map((image) => ({ image })), family);
      const r = await client.resolve(ref(`multi/${family}`));
      const want = images.find((i) => i.platform.architecture === host.architecture)!;
      expect(r.manifestDigest).toBe(want.manifest.digest);
      expect(r.indexDigest).toBe(digest);
      expect(r.platform?.architecture).toBe(host.architecture);
      // An explicit platform wins over the host's.
      const arm = await client.resolve(ref(`multi/${family}`), { platform: { os: 'linux', architecture: 'arm', variant: 'v7' } });
      expect(arm.manifestDigest).toBe(images[2]!.manifest.digest);
      await expect(client.resolve(ref(`multi/${family}`), { platform: { os: 'linux', architecture: 's390x' } }))
        .rejects.toThrow(/no manifest for platform linux\/s390x.*linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7/);
    }
  });

  it('resolves by digest and by tag+digest, the digest winning', async () => {
    const byDigest = await client.resolve(ref(`library/busybox@${busyboxDigest}`));
    expect(byDigest.manifestDigest).toBe(busyboxDigest);
    const other = await platformImage({ os: 'linux', architecture: 'amd64' });
    await pushImage(registry, 'library/busybox', 'other', other);
    const both = await client.resolve(ref(`library/busybox:other@${busyboxDigest}`));
    expect(both.manifestDigest).toBe(busyboxDigest);
    expect(both.ref.tag).toBe('other');
  });

  it('refuses schema 1 manifests with FailedPrecondition', async () => {
    // distribution 2.8 will not store a schema 1 manifest, so a proxy serves one in its place.
    const proxy = await schema1Proxy(registry);
    try {
      const err = await client.resolve(parseReference(`${proxy.host}/legacy/app:1`)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FailedPreconditionError);
      expect((err as Error).message).toMatch(/schema 1/);
      expect((err as Error).message).toContain('legacy/app:1');
    } finally {
      await proxy.stop();
    }
  });

  it('answers NotFound naming the image for a missing tag or repository', async () => {
    for (const r of ['library/busybox:nope', 'no/such-repo:1']) {
      const err = await client.resolve(ref(r)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NotFoundError);
      expect((err as Error).message).toContain(`${registry.host}/${r}`);
      expect((err as Error).message).toMatch(/MANIFEST_UNKNOWN|NAME_UNKNOWN/);
    }
  });

  it('refuses unknown media types, naming them', async () => {
    const cfg = Buffer.from('{}');
    const { pushBlob } = await import('../../../test-support/image-builder.js');
    await pushBlob(registry, 'artifact/x', sha256(cfg), cfg);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MT.ociManifest,
      config: { mediaType: 'application/vnd.cncf.helm.config.v1+json', digest: sha256(cfg), size: cfg.length }, layers: [],
    }));
    await pushManifestBytes(registry, 'artifact/x', '1', MT.ociManifest, manifest);
    await expect(client.resolve(ref('artifact/x:1'))).rejects.toThrow(/application\/vnd\.cncf\.helm\.config\.v1\+json/);
  });

  it('detects a manifest whose bytes do not match the digest asked for', async () => {
    const proxy = await startFaultProxy(registry.url);
    try {
      proxy.addRule({ path: /\/manifests\/sha256:/, action: 'corrupt', afterBytes: 30 });
      const err = await client.resolve(parseReference(`${proxy.host}/library/busybox@${busyboxDigest}`)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DataLossError);
      expect((err as Error).message).toContain(busyboxDigest);
    } finally {
      await proxy.stop();
    }
  });
});

describe('https registries', () => {
  it('pulls manifests and blobs over https from a registry marked insecure, and refuses an untrusted certificate otherwise', async () => {
    const tls = await startRegistry({ tls: true });
    const trusting = new RegistryClient({ retries: 0, hosts: { [tls.host]: { insecure: true } } });
    const strict = new RegistryClient({ retries: 0 });
    try {
      const img = buildImage({ layers: [await layerFromEntries([{ type: 'file', path: 'tls', content: 'yes' }])] });
      await pushImage(tls, 'secure/app', '1', img);
      const r = await trusting.resolve(parseReference(`${tls.host}/secure/app:1`));
      expect(r.endpoint.url).toBe(`https://${tls.host}`);
      expect(r.manifestDigest).toBe(img.manifest.digest);
      expect((await trusting.fetchConfig(r)).equals(img.config.bytes)).toBe(true);
      // A layer comes through blob-http.ts's own TLS connection.
      const layer: Buffer[] = [];
      for await (const c of await trusting.openBlob(r, r.layers[0]!)) layer.push(c as Buffer);
      expect(Buffer.concat(layer).equals(img.layers[0]!.blob)).toBe(true);
      const err = await strict.resolve(parseReference(`${tls.host}/secure/app:1`)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FailedPreconditionError);
      expect((err as Error).message).toMatch(new RegExp(`registry ${tls.host} presented a TLS certificate that is not trusted.*insecure = true`));
    } finally {
      await Promise.all([trusting.close(), strict.close()]);
      await tls.stop();
    }
  });
});

describe('request timeout', () => {
  it('gives up with DeadlineExceeded when a registry accepts but never answers', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const c = new RegistryClient({ requestTimeoutMs: 400, retries: 0 });
    try {
      const host = `127.0.0.1:${(silent.address() as { port: number }).port}`;
      const started = Date.now();
      const err = await c.resolve(parseReference(`${host}/app:1`)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeadlineExceededError);
      expect((err as Error).message).toContain(host);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await c.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});

/** A registry front that serves a signed schema 1 manifest for legacy/app:1. */
async function schema1Proxy(target: TestRegistry) {
  const { createServer } = await import('node:http');
  const body = JSON.stringify({ schemaVersion: 1, name: 'legacy/app', tag: '1', architecture: 'amd64', fsLayers: [], history: [], signatures: [] });
  const server = createServer((req, res) => {
    if (req.url === '/v2/') return void res.writeHead(200).end('{}');
    if (req.url?.startsWith('/v2/legacy/app/manifests/1')) {
      res.writeHead(200, { 'content-type': MT.dockerSchema1Signed, 'docker-content-digest': sha256(body) });
      return void res.end(body);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  void target;
  return {
    host: `127.0.0.1:${(server.address() as { port: number }).port}`,
    stop: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
