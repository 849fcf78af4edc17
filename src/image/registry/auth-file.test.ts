import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../../../test-support/fault-proxy.js';
import { buildImage, layerFromEntries, pushImage, type BuiltImage } from '../../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../../test-support/registry.js';
import { configFromObject } from '../../config/config.js';
import { UnauthenticatedError } from '../../errors.js';
import { parseReference } from '../reference.js';
import { MAX_AUTH_FILE_BYTES, RegistryAuthFile } from './auth-file.js';
import { RegistryClient, hostsConfigFromCrib, type RegistryHostsConfig } from './client.js';

const PASSWORD = 'F1le-Pa55-do-not-leak';
const b64 = (s: string) => Buffer.from(s).toString('base64');
let registry: TestRegistry;
let proxy: FaultProxy;
let image: BuiltImage;
let dir: string;
const clients: RegistryClient[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crib-authfile-'));
  registry = await startRegistry({ auth: 'basic', users: [{ username: 'crib', password: PASSWORD }] });
  // The same registry under another host name: a mirror, as far as credentials go.
  proxy = await startFaultProxy(registry.url);
  image = buildImage({ layers: [await layerFromEntries([{ type: 'file', path: 'secret', content: 'private\n' }])] });
  await pushImage(registry, 'team/private', 'v1', image);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await proxy?.stop();
  await registry?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function authFile(doc: unknown): string {
  const path = join(dir, `auth-${n++}.json`);
  writeFileSync(path, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return path;
}
function client(config: RegistryHostsConfig): RegistryClient {
  const c = new RegistryClient({ retries: 1, backoffMs: 20, ...config });
  clients.push(c);
  return c;
}
const ref = () => parseReference(`${registry.host}/team/private:v1`);
const good = { auth: b64(`crib:${PASSWORD}`) };
const bad = { auth: b64('crib:wrong-password') };

describe('registry credentials file', () => {
  it('pulls with the credentials a docker config.json gives the registry', async () => {
    const c = client({ authFile: authFile({ auths: { [registry.host]: good } }) });
    expect((await c.resolve(ref())).manifestDigest).toBe(image.manifest.digest);
    // username/password fields (containers auth.json may carry them) work too.
    const c2 = client({ authFile: authFile({ auths: { [`http://${registry.host}/`]: { username: 'crib', password: PASSWORD } } }) });
    expect((await c2.resolve(ref())).manifestDigest).toBe(image.manifest.digest);
  });

  it('lets the inline [registry.host.auth] credentials win over the file', async () => {
    const c = client({ authFile: authFile({ auths: { [registry.host]: good } }), hosts: { [registry.host]: { auth: { username: 'crib', password: 'wrong-inline' } } } });
    await expect(c.resolve(ref())).rejects.toBeInstanceOf(UnauthenticatedError);
  });

  it('uses the most specific namespace entry covering the repository, on component boundaries', async () => {
    const scoped = client({ authFile: authFile({ auths: { [registry.host]: bad, [`${registry.host}/team`]: good } }) });
    expect((await scoped.resolve(ref())).manifestDigest).toBe(image.manifest.digest);
    const elsewhere = client({ authFile: authFile({ auths: { [`${registry.host}/te`]: good, [`${registry.host}/team/private-not`]: good } }) });
    await expect(elsewhere.resolve(ref())).rejects.toBeInstanceOf(UnauthenticatedError);
  });

  it("never sends the registry's file credentials to a mirror; the mirror's own entry is used", async () => {
    const hosts = { [registry.host]: { mirrors: [proxy.url], overrideUpstream: true } };
    const registryOnly = client({ hosts, authFile: authFile({ auths: { [registry.host]: good } }) });
    await expect(registryOnly.resolve(ref())).rejects.toBeInstanceOf(UnauthenticatedError);
    const mirrorEntry = client({ hosts, authFile: authFile({ auths: { [proxy.host]: good } }) });
    const r = await mirrorEntry.resolve(ref());
    expect(r.endpoint.host).toBe(proxy.host);
  });

  it('re-reads the file when it changes; a missing or broken file gives no credentials and breaks nothing', async () => {
    const path = join(dir, 'changing.json');
    const c = client({ authFile: path });
    await expect(c.resolve(ref())).rejects.toBeInstanceOf(UnauthenticatedError);
    writeFileSync(path, '{"auths": {');
    await expect(c.resolve(ref())).rejects.toBeInstanceOf(UnauthenticatedError);
    writeFileSync(path, JSON.stringify({ auths: { [registry.host]: good } }));
    expect((await c.resolve(ref())).manifestDigest).toBe(image.manifest.digest);
  });

  it('refuses an oversized file and keys that name no registry', async () => {
    const big = authFile(' '.repeat(MAX_AUTH_FILE_BYTES + 1));
    const f = new RegistryAuthFile(big);
    await f.refresh();
    expect(f.lookup(registry.host, 'team/private')).toBeUndefined();
    const odd = new RegistryAuthFile(authFile({ auths: { '*.example.com': good, 'https://index.docker.io/v1/': good }, credHelpers: { 'gcr.io': 'gcloud' } }));
    await odd.refresh();
    expect(odd.lookup('docker.io', 'library/busybox')).toEqual({ auth: good.auth, username: undefined, password: undefined, identityToken: undefined });
    expect(odd.lookup('a.example.com', 'x')).toBeUndefined();
  });

  it('is configured by [image] auth_file', () => {
    const cfg = configFromObject({ image: { auth_file: '/etc/crib/auth.json' } });
    expect(hostsConfigFromCrib(cfg).authFile).toBe('/etc/crib/auth.json');
    expect(hostsConfigFromCrib(configFromObject({})).authFile).toBeUndefined();
    expect(() => configFromObject({ image: { auth_file: 'auth.json' } })).toThrow(/image.auth_file: must be an absolute path/);
  });
});
