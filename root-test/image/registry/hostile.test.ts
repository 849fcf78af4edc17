// The registry client against registries that misbehave on purpose (test-support/
// hostile-registry.ts): oversized and endless bodies, lying lengths, redirect games and token
// realms aimed where they should not be. Each answer is bounded, and no credential goes where
// it does not belong.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DataLossError, DeadlineExceededError, FailedPreconditionError, NotFoundError, ResourceExhaustedError, UnavailableError,
} from '../../../src/errors.js';
import { addOffLoopbackAddress, type OffLoopbackAddress } from '../../../test-support/off-loopback-address.js';
import { craftImage, smallLayer } from '../../../test-support/hostile-images.js';
import { startHostileRegistry, type HostileRegistry } from '../../../test-support/hostile-registry.js';
import { MT } from '../../../test-support/image-builder.js';
import { parseReference } from '../../../src/image/reference.js';
import { RegistryClient, type RegistryHostsConfig } from '../../../src/image/registry/client.js';

const USER = { username: 'u', password: 'secret-password' };
const creds = `Basic ${Buffer.from(`${USER.username}:${USER.password}`).toString('base64')}`;
const image = craftImage([smallLayer('a', 'a\n')]);
const servers: HostileRegistry[] = [];
const clients: RegistryClient[] = [];
let net: OffLoopbackAddress;

async function server(opts: Parameters<typeof startHostileRegistry>[0] = {}): Promise<HostileRegistry> {
  const r = await startHostileRegistry(opts);
  r.serveImage('team/app', 'v1', image);
  servers.push(r);
  return r;
}

function client(config: RegistryHostsConfig = {}): RegistryClient {
  const c = new RegistryClient({ retries: 0, backoffMs: 10, ...config });
  clients.push(c);
  return c;
}

const ref = (r: HostileRegistry, repo = 'team/app:v1') => parseReference(`${r.host}/${repo}`);
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as Error);

beforeAll(async () => {
  net = await addOffLoopbackAddress();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.stop()));
  await net?.remove();
});

describe('bounded answers', () => {
  it('refuses a token response over 1 MiB, and one that never ends', async () => {
    const realm = await server();
    const reg = await server({ auth: { kind: 'bearer', realm: '' } });
    reg.auth = { kind: 'bearer', realm: `${realm.url}/token` };
    for (const announce of [true, false]) {
      realm.clearHandlers();
      let closed = false;
      realm.handle((req, res) => {
        if (!req.url?.startsWith('/token')) return false;
        res.writeHead(200, { 'content-type': 'application/json', ...(announce ? { 'content-length': 64 << 20 } : {}) });
        const chunk = Buffer.alloc(64 << 10, 0x20);
        const pump = () => { while (!closed && res.write(chunk)); if (!closed) res.once('drain', pump); };
        res.on('close', () => (closed = true));
        pump();
        return true;
      });
      const err = await failure(client().resolve(ref(reg), { auth: USER }));
      expect(err).toBeInstanceOf(ResourceExhaustedError);
      expect(err!.message).toMatch(/token server .* answered with more than 1 MiB/);
      await new Promise((r) => setTimeout(r, 100));
      expect(closed).toBe(true);
    }
  });

  it('reads only a bounded part of an endless error body', async () => {
    const reg = await server();
    let sent = 0;
    reg.handle((req, res) => {
      if (!req.url?.includes('/manifests/gone')) return false;
      res.writeHead(404, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(64 << 10, 0x61);
      let closed = false;
      const pump = () => { while (!closed && res.write(chunk)) sent += chunk.length; if (!closed) res.once('drain', pump); };
      res.on('close', () => (closed = true));
      pump();
      return true;
    });
    const err = await failure(client().resolve(ref(reg, 'team/app:gone')));
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err!.message.length).toBeLessThan(2000);
    expect(sent).toBeLessThan(16 << 20);
  });

  it('gives up on a manifest dripping in slower than the progress timeout allows', async () => {
    const reg = await server();
    reg.handle((req, res) => {
      if (!req.url?.includes('/manifests/slow')) return false;
      res.writeHead(200, { 'content-type': MT.ociManifest });
      const t = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(t));
      return true;
    });
    const started = Date.now();
    const err = await failure(client({ progressTimeoutMs: 1000, requestTimeoutMs: 5000 }).resolve(ref(reg, 'team/app:slow')));
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('refuses a blob whose Content-Length is larger than its descriptor before reading it', async () => {
    const reg = await server();
    const layer = image.layers[0]!;
    reg.handle((req, res) => {
      if (!req.url?.includes(`/blobs/${layer.digest}`)) return false;
      res.writeHead(200, { 'content-length': layer.size + 1_000_000 });
      res.write(layer.blob);
      return true;
    });
    const c = client();
    const resolved = await c.resolve(ref(reg));
    const err = await failure(c.openBlob(resolved, resolved.layers[0]!));
    expect(err).toBeInstanceOf(DataLossError);
    expect(err!.message).toContain(`announced ${layer.size + 1_000_000} bytes for a blob of ${layer.size} bytes`);
  });

  it('refuses an index with too many manifests and a manifest with too many layers, naming the keys', async () => {
    const reg = await server();
    const many = craftImage([smallLayer('a', 'a'), smallLayer('b', 'b'), smallLayer('c', 'c')]);
    reg.serveImage('team/deep', 'v1', many);
    const err = await failure(client({ limits: { maxLayers: 2 } }).resolve(ref(reg, 'team/deep:v1')));
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect(err!.message).toContain('has 3 layers, over the limit of 2 set by image.max_layers');
    const index = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MT.ociIndex,
      manifests: [1, 2, 3].map(() => ({ mediaType: MT.ociManifest, digest: image.manifest.digest, size: image.manifest.size, platform: { os: 'linux', architecture: 'amd64' } })),
    }));
    reg.serveManifest('team/wide', 'v1', MT.ociIndex, index);
    const wide = await failure(client({ limits: { maxIndexManifests: 2 } }).resolve(ref(reg, 'team/wide:v1')));
    expect(wide).toBeInstanceOf(ResourceExhaustedError);
    expect(wide!.message).toContain('lists 3 manifests, over the limit of 2 set by image.max_index_manifests');
  });
});

describe('redirects', () => {
  it('stops after 5 redirects and refuses non-http targets', async () => {
    const reg = await server();
    reg.handle((req, res) => {
      if (!req.url?.includes('/manifests/loop')) return false;
      res.writeHead(302, { location: `${req.url}x`, 'content-length': 0 }).end();
      return true;
    });
    reg.handle((req, res) => {
      if (!req.url?.includes('/manifests/file')) return false;
      res.writeHead(302, { location: 'file:///etc/shadow', 'content-length': 0 }).end();
      return true;
    });
    const loop = await failure(client().resolve(ref(reg, 'team/app:loop')));
    expect(loop).toBeInstanceOf(UnavailableError);
    expect(loop!.message).toMatch(/redirected image .* more than 5 times/);
    const file = await failure(client().resolve(ref(reg, 'team/app:file')));
    expect(file).toBeInstanceOf(UnavailableError);
    expect(file!.message).toContain('to a file: URL');
  });

  it('sends the Authorization only to the origin asked, never again once a redirect left it', async () => {
    const a = await server({ auth: { kind: 'basic', ...USER } });
    const b = await server();
    // a → b → back to a: the hop back to a goes without credentials (and is refused by a).
    const layer = image.layers[0]!;
    a.handle((req, res) => {
      if (!req.url?.includes(`/blobs/${layer.digest}`) || req.url.includes('back')) return false;
      res.writeHead(307, { location: `${b.url}/hop?to=${encodeURIComponent(`${a.url}${req.url}&back=1`)}`, 'content-length': 0 }).end();
      return true;
    });
    b.handle((req, res) => {
      if (!req.url?.startsWith('/hop')) return false;
      res.writeHead(307, { location: new URL(req.url, 'http://x').searchParams.get('to')!, 'content-length': 0 }).end();
      return true;
    });
    const c = client();
    const resolved = await c.resolve(ref(a), { auth: USER });
    const err = await failure(c.openBlob(resolved, resolved.layers[0]!, { auth: USER }));
    expect(err).toBeDefined();
    expect(b.authorized()).toEqual([]);
    const back = a.requests.filter((r) => r.path.includes('back=1'));
    expect(back.length).toBeGreaterThan(0);
    expect(back.every((r) => r.authorization === undefined)).toBe(true);
    expect(a.requests.filter((r) => r.path.includes('/blobs/') && !r.path.includes('back')).every((r) => r.authorization === creds)).toBe(true);
  });
});

describe('token realms', () => {
  it('refuses a realm on this node named by a registry that is not on this node', async () => {
    const local = await server();
    local.tokenUsers.push(USER);
    const remote = await server({ address: net.address, auth: { kind: 'bearer', realm: `${local.url}/token` } });
    const err = await failure(client({ hosts: { [remote.host]: { insecure: true } } }).resolve(ref(remote), { auth: USER }));
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect(err!.message).toContain('named a token realm on this node or a link-local address');
    expect(local.requests).toEqual([]);
  });

  it('sends credentials to an https-less realm only on loopback or when it is configured insecure', async () => {
    const realm = await server({ address: net.address });
    realm.tokenUsers.push(USER);
    const reg = await server({ auth: { kind: 'bearer', realm: `${realm.url}/token` } });
    const refused = await failure(client().resolve(ref(reg), { auth: USER }));
    expect(refused).toBeInstanceOf(FailedPreconditionError);
    expect(realm.requests).toEqual([]);
    // Anonymous: nothing secret to send, so the realm is asked (and refuses).
    await failure(client().resolve(ref(reg)));
    expect(realm.requests.length).toBe(1);
    expect(realm.authorized()).toEqual([]);
    const ok = await client({ hosts: { [realm.host]: { insecure: true } } }).resolve(ref(reg), { auth: USER });
    expect(ok.manifestDigest).toBe(image.manifest.digest);
    expect(realm.authorized().map((r) => r.authorization)).toEqual([creds]);
  });
});
