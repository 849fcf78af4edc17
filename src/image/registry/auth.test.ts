import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, layerFromEntries, pushImage, type BuiltImage } from '../../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../../test-support/registry.js';
import { startFaultProxy } from '../../../test-support/fault-proxy.js';
import { InvalidArgumentError, PermissionDeniedError, UnauthenticatedError } from '../../errors.js';
import { parseReference } from '../reference.js';
import { Authenticator, MAX_CACHED_TOKEN_CHARS, MAX_CACHED_TOKENS, MAX_KNOWN_ENDPOINTS, parseChallenge, type Challenge } from './auth.js';
import { withDefaults } from './hosts.js';
import { RegistryHttp } from './registry-http.js';
import { RegistryClient } from './client.js';

let basic: TestRegistry;
let token: TestRegistry;
let image: BuiltImage;
const clients: RegistryClient[] = [];
const PASSWORD = 'S3cret-Pa55-do-not-leak';

function newClient(config: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({ retries: 1, backoffMs: 20, ...config });
  clients.push(c);
  return c;
}

/** The error a promise rejects with; asserts that no secret appears in its message. */
async function failure(p: Promise<unknown>, ...secrets: string[]): Promise<Error> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  for (const s of [PASSWORD, Buffer.from(`crib:${PASSWORD}`).toString('base64'), ...secrets]) {
    expect((err as Error).message).not.toContain(s);
    expect(String((err as Error).stack)).not.toContain(s);
  }
  return err as Error;
}

beforeAll(async () => {
  [basic, token] = await Promise.all([
    startRegistry({ auth: 'basic', users: [{ username: 'crib', password: PASSWORD }] }),
    startRegistry({ auth: 'token', users: [{ username: 'crib', password: PASSWORD }] }),
  ]);
  image = buildImage({ layers: [await layerFromEntries([{ type: 'file', path: 'secret', content: 'private\n' }])] });
  await pushImage(basic, 'team/private', 'v1', image);
  await pushImage(token, 'team/private', 'v1', image);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all([basic?.stop(), token?.stop()]);
});

describe('challenge parsing', () => {
  it('reads bearer and basic challenges with quoted and bare values', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual({
      scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
    });
    expect(parseChallenge('Basic realm=crib')).toEqual({ scheme: 'basic', params: { realm: 'crib' } });
    expect(parseChallenge('Negotiate abc')).toBeUndefined();
  });
});

describe('basic auth registry', () => {
  const ref = () => parseReference(`${basic.host}/team/private:v1`);

  it('pulls with good credentials (CRI username/password and the auth field)', async () => {
    const c = newClient();
    const r = await c.resolve(ref(), { auth: { username: 'crib', password: PASSWORD } });
    expect(r.manifestDigest).toBe(image.manifest.digest);
    const r2 = await newClient().resolve(ref(), { auth: { auth: Buffer.from(`crib:${PASSWORD}`).toString('base64') } });
    expect(r2.manifestDigest).toBe(image.manifest.digest);
    const cfg = await c.fetchConfig(r, { auth: { username: 'crib', password: PASSWORD } });
    expect(cfg.equals(image.config.bytes)).toBe(true);
  });

  it('pulls with credentials from the hosts config', async () => {
    const c = newClient({ hosts: { [basic.host]: { auth: { username: 'crib', password: PASSWORD } } } });
    expect((await c.resolve(ref())).manifestDigest).toBe(image.manifest.digest);
  });

  it('answers Unauthenticated for bad or missing credentials without leaking them', async () => {
    const bad = await failure(newClient().resolve(ref(), { auth: { username: 'crib', password: 'wrong-password-xyz' } }), 'wrong-password-xyz');
    expect(bad).toBeInstanceOf(UnauthenticatedError);
    expect(bad.message).toContain(basic.host);
    expect(bad.message).toMatch(/UNAUTHORIZED/);
    const none = await failure(newClient().resolve(ref()));
    expect(none).toBeInstanceOf(UnauthenticatedError);
    expect(none.message).toMatch(/username and password/);
  });

  it('rejects a malformed auth field as InvalidArgument without echoing it', async () => {
    const err = await failure(newClient().resolve(ref(), { auth: { auth: 'not base64 at all!' } }), 'not base64 at all!');
    expect(err).toBeInstanceOf(InvalidArgumentError);
  });
});

describe('token auth registry', () => {
  const ref = () => parseReference(`${token.host}/team/private:v1`);

  it('uses the token flow with username/password and caches the token', async () => {
    token.tokenServer!.requests.length = 0;
    const c = newClient();
    const auth = { username: 'crib', password: PASSWORD };
    const r = await c.resolve(ref(), { auth });
    expect(r.manifestDigest).toBe(image.manifest.digest);
    await c.fetchConfig(r, { auth });
    await c.resolve(ref(), { auth });
    const reqs = token.tokenServer!.requests;
    expect(reqs).toHaveLength(1);
    expect(reqs[0]).toMatchObject({ grantType: 'basic', account: 'crib', scope: 'repository:team/private:pull', granted: true });
  });

  it('shares one token request among parallel downloads', async () => {
    token.tokenServer!.requests.length = 0;
    const c = newClient();
    const auth = { username: 'crib', password: PASSWORD };
    const source = { ref: ref() };
    const streams = await Promise.all([0, 1, 2, 3].map(() => c.openBlob(source, image.layers[0]!, { auth })));
    for (const s of streams) {
      const chunks: Buffer[] = [];
      for await (const chunk of s) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(image.layers[0]!.blob)).toBe(true);
    }
    expect(token.tokenServer!.requests).toHaveLength(1);
  });

  it('accepts the auth field, a registry token and an identity token', async () => {
    const tokens = token.tokenServer!;
    tokens.requests.length = 0;
    const fromAuth = await newClient().resolve(ref(), { auth: { auth: Buffer.from(`crib:${PASSWORD}`).toString('base64') } });
    expect(fromAuth.manifestDigest).toBe(image.manifest.digest);
    expect(tokens.requests.at(-1)).toMatchObject({ grantType: 'basic', granted: true });

    const registryToken = tokens.mintToken('team/private', ['pull']);
    const before = tokens.requests.length;
    const fromToken = await newClient().resolve(ref(), { auth: { registryToken } });
    expect(fromToken.manifestDigest).toBe(image.manifest.digest);
    expect(tokens.requests.length).toBe(before);

    const identityToken = tokens.issueRefreshToken('crib');
    const fromIdentity = await newClient().resolve(ref(), { auth: { identityToken } });
    expect(fromIdentity.manifestDigest).toBe(image.manifest.digest);
    expect(tokens.requests.at(-1)).toMatchObject({ method: 'POST', grantType: 'refresh_token', account: 'crib', granted: true });
  });

  it('answers Unauthenticated for bad, missing or out-of-scope credentials without leaking them', async () => {
    const bad = await failure(newClient().resolve(ref(), { auth: { username: 'crib', password: 'nope-nope-123' } }), 'nope-nope-123');
    expect(bad).toBeInstanceOf(UnauthenticatedError);
    expect(bad.message).toMatch(/token server .* refused the credentials/);
    const none = await failure(newClient().resolve(ref()));
    expect(none).toBeInstanceOf(UnauthenticatedError);
    const wrongRepo = tokenOf('other/repo');
    const scoped = await failure(newClient().resolve(ref(), { auth: { registryToken: wrongRepo } }), wrongRepo);
    expect(scoped).toBeInstanceOf(UnauthenticatedError);
    expect(scoped.message).toContain(token.host);
    const badIdentity = await failure(newClient().resolve(ref(), { auth: { identityToken: 'bogus-refresh-token' } }), 'bogus-refresh-token');
    expect(badIdentity).toBeInstanceOf(UnauthenticatedError);
  });
});

describe('token expiry', () => {
  it('fetches a new token once the cached one has expired', async () => {
    const shortLived = await startRegistry({ auth: 'token', users: [{ username: 'crib', password: PASSWORD }], tokenTtlSeconds: 2 });
    try {
      await pushImage(shortLived, 'team/private', 'v1', image);
      const tokens = shortLived.tokenServer!;
      tokens.requests.length = 0;
      const c = newClient();
      const auth = { username: 'crib', password: PASSWORD };
      const ref = parseReference(`${shortLived.host}/team/private:v1`);
      await c.resolve(ref, { auth });
      await c.resolve(ref, { auth });
      expect(tokens.requests).toHaveLength(1);
      // Past the two-second lifetime the cached token must not be reused.
      await new Promise((r) => setTimeout(r, 2100));
      await c.resolve(ref, { auth });
      expect(tokens.requests).toHaveLength(2);
    } finally {
      await shortLived.stop();
    }
  });
});

describe('behind proxies', () => {
  it('reports 403 as PermissionDenied with the registry message', async () => {
    const proxy = await startFaultProxy(token.url);
    try {
      proxy.addRule({ path: /\/manifests\//, action: 'forbidden' });
      const err = await failure(newClient().resolve(parseReference(`${proxy.host}/team/private:v1`), { auth: { username: 'crib', password: PASSWORD } }));
      expect(err).toBeInstanceOf(PermissionDeniedError);
      expect(err.message).toContain('DENIED: injected: requested access to the resource is denied');
    } finally {
      await proxy.stop();
    }
  });

  it('follows a blob redirect to another origin without sending it the registry token', async () => {
    const cdnRegistry = await startRegistry();
    const [front, cdn] = await Promise.all([startFaultProxy(token.url), startFaultProxy(cdnRegistry.url)]);
    try {
      await pushImage(cdnRegistry, 'team/private', 'v1', image);
      front.addRule({ path: /\/blobs\//, action: 'redirect', location: cdn.url });
      const c = newClient();
      const auth = { username: 'crib', password: PASSWORD };
      const r = await c.resolve(parseReference(`${front.host}/team/private:v1`), { auth });
      expect((await c.fetchConfig(r, { auth })).equals(image.config.bytes)).toBe(true);
      expect(front.requests.filter((q) => q.path.includes('/blobs/')).every((q) => q.authorized)).toBe(true);
      const cdnGets = cdn.requests.filter((q) => q.path.includes('/blobs/'));
      expect(cdnGets.length).toBe(1);
      expect(cdnGets[0]!.authorized).toBe(false);
    } finally {
      await Promise.all([front.stop(), cdn.stop()]);
      await cdnRegistry.stop();
    }
  });
});

function tokenOf(repo: string): string {
  return token.tokenServer!.mintToken(repo, ['pull']);
}

describe('what the authenticator keeps', () => {
  let realm: Server;
  /** Token requests per scope; a scope starting "big/" gets a token over the cache's bound. */
  const asked = new Map<string, number>();
  let challenge: Challenge;
  const http = new RegistryHttp();
  const registryHost = '127.0.0.1:5999';

  beforeAll(async () => {
    realm = createServer((req, res) => {
      const scope = new URL(req.url!, 'http://x').searchParams.get('scope')!;
      asked.set(scope, (asked.get(scope) ?? 0) + 1);
      const token = scope.startsWith('repository:big/') ? 't'.repeat(MAX_CACHED_TOKEN_CHARS + 1) : `token-for-${scope}`;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token, expires_in: 300 }));
    });
    await new Promise<void>((r) => realm.listen(0, '127.0.0.1', r));
    challenge = { scheme: 'bearer', params: { realm: `http://127.0.0.1:${(realm.address() as AddressInfo).port}/token`, service: 'test' } };
  });
  afterAll(async () => {
    await http.close();
    await new Promise((r) => realm.close(r));
  });

  it('keeps the tokens of the most recently used repositories, up to a bound, and none too large to keep', async () => {
    const auth = new Authenticator(withDefaults(), http);
    const scope = (i: number) => `repository:team/r${i}:pull`;
    const header = (s: string) => auth.authorization(challenge, s, undefined, registryHost);
    for (let i = 0; i <= MAX_CACHED_TOKENS; i++) expect(await header(scope(i))).toBe(`Bearer token-for-${scope(i)}`);
    // r1 used again: now r2 is the least recently used.
    await header(scope(1));
    expect(asked.get(scope(1))).toBe(1);
    // One more repository: r0 was dropped when the bound was passed, r2 now; the rest are kept.
    await header(scope(MAX_CACHED_TOKENS + 1));
    await header(scope(0));
    expect(asked.get(scope(0))).toBe(2);
    await header(scope(1));
    await header(scope(MAX_CACHED_TOKENS));
    expect(asked.get(scope(1))).toBe(1);
    expect(asked.get(scope(MAX_CACHED_TOKENS))).toBe(1);
    // A token over the size kept is used, and asked for again each time.
    const big = 'repository:big/x:pull';
    expect(await header(big)).toHaveLength('Bearer '.length + MAX_CACHED_TOKEN_CHARS + 1);
    await header(big);
    expect(asked.get(big)).toBe(2);
  });

  it('keeps the challenges of the most recently seen endpoints, up to a bound', () => {
    const auth = new Authenticator(withDefaults(), http);
    const url = (i: number) => `https://registry-${i}.example`;
    for (let i = 0; i <= MAX_KNOWN_ENDPOINTS; i++) auth.rememberChallenge(url(i), challenge);
    expect(auth.knownChallenge(url(0))).toBeUndefined();
    expect(auth.knownChallenge(url(1))).toBe(challenge);
    expect(auth.knownChallenge(url(MAX_KNOWN_ENDPOINTS))).toBe(challenge);
  });
});
