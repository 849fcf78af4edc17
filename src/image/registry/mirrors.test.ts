import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../../../test-support/fault-proxy.js';
import { buildImage, layerFromEntries, pushImage, type BuiltImage } from '../../../test-support/image-builder.js';
import { freePort, startRegistry, type TestRegistry } from '../../../test-support/registry.js';
import { configFromObject } from '../../config/config.js';
import { UnavailableError } from '../../errors.js';
import { parseReference } from '../reference.js';
import { RegistryClient, hostsConfigFromCrib, type RegistryHostsConfig } from './client.js';

let upstream: TestRegistry;
let mirror: TestRegistry;
let up: FaultProxy;
let mir: FaultProxy;
let image: BuiltImage;
let downUrl: string;
const clients: RegistryClient[] = [];

beforeAll(async () => {
  [upstream, mirror] = await Promise.all([startRegistry(), startRegistry()]);
  [up, mir] = await Promise.all([startFaultProxy(upstream.url), startFaultProxy(mirror.url)]);
  image = buildImage({ layers: [await layerFromEntries([{ type: 'file', path: 'where', content: 'anywhere\n' }])] });
  await pushImage(upstream, 'team/app', 'v1', image);
  await pushImage(mirror, 'team/app', 'v1', image);
  await pushImage(upstream, 'team/only-upstream', 'v1', image);
  // Nothing listens here: a mirror that is down.
  downUrl = `http://127.0.0.1:${await freePort()}`;
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all([up?.stop(), mir?.stop()]);
  await Promise.all([upstream?.stop(), mirror?.stop()]);
});

function client(hosts: RegistryHostsConfig['hosts']): RegistryClient {
  const c = new RegistryClient({ hosts, retries: 1, backoffMs: 20 });
  clients.push(c);
  return c;
}

async function pullAll(c: RegistryClient, repo: string) {
  const r = await c.resolve(parseReference(`${up.host}/${repo}`));
  const cfg = await c.fetchConfig(r);
  const layer = await c.openBlob(r, r.layers[0]!);
  const chunks: Buffer[] = [];
  for await (const chunk of layer) chunks.push(chunk as Buffer);
  expect(Buffer.concat(chunks).equals(image.layers[0]!.blob)).toBe(true);
  expect(cfg.equals(image.config.bytes)).toBe(true);
  return r;
}

describe('registry mirrors', () => {
  it('serves everything from a working mirror; the upstream is never contacted', async () => {
    up.requests.length = 0;
    mir.requests.length = 0;
    const r = await pullAll(client({ [up.host]: { mirrors: [mir.url] } }), 'team/app:v1');
    expect(r.endpoint.mirror).toBe(true);
    expect(r.endpoint.host).toBe(mir.host);
    expect(up.requests).toHaveLength(0);
    expect(mir.count(/\/v2\/team\/app\/manifests\/v1\?ns=/)).toBe(1);
    expect(mir.count(/\/v2\/team\/app\/blobs\//)).toBe(2);
  });

  it('falls back past a mirror that is down to the next mirror, then to the upstream', async () => {
    up.requests.length = 0;
    mir.requests.length = 0;
    const viaNext = await pullAll(client({ [up.host]: { mirrors: [downUrl, mir.url] } }), 'team/app:v1');
    expect(viaNext.endpoint.host).toBe(mir.host);
    expect(up.requests).toHaveLength(0);

    const viaUpstream = await pullAll(client({ [up.host]: { mirrors: [downUrl] } }), 'team/app:v1');
    expect(viaUpstream.endpoint.mirror).toBe(false);
    expect(up.count(/\/manifests\/v1$/)).toBe(1);
  });

  it('falls back to the upstream when the mirror lacks the image', async () => {
    up.requests.length = 0;
    const r = await pullAll(client({ [up.host]: { mirrors: [mir.url] } }), 'team/only-upstream:v1');
    expect(r.endpoint.host).toBe(up.host);
    expect(mir.count(/\/v2\/team\/only-upstream\/manifests\/v1/)).toBe(1);
  });

  it('uses the "*" entry for hosts without their own, and honours overrideUpstream', async () => {
    up.requests.length = 0;
    const r = await pullAll(client({ '*': { mirrors: [mir.url] } }), 'team/app:v1');
    expect(r.endpoint.host).toBe(mir.host);
    const err = await client({ [up.host]: { mirrors: [downUrl], overrideUpstream: true } })
      .resolve(parseReference(`${up.host}/team/app:v1`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toContain(new URL(downUrl).host);
    expect(up.requests).toHaveLength(0);
  });

  it('takes its settings from the daemon config file', async () => {
    const cfg = configFromObject({
      image: { request_timeout: '10s', retries: 1, pull_progress_timeout: '1m' },
      registry: { [up.host]: { mirrors: [mir.url], override_upstream: true, auth: { username: 'u', password: 'p' } } },
    });
    const hosts = hostsConfigFromCrib(cfg);
    expect(hosts).toMatchObject({ requestTimeoutMs: 10_000, retries: 1, progressTimeoutMs: 60_000 });
    expect(hosts.hosts![up.host]).toMatchObject({ mirrors: [mir.url], overrideUpstream: true, auth: { username: 'u', password: 'p' } });
    up.requests.length = 0;
    const c = new RegistryClient(hosts);
    clients.push(c);
    expect((await c.resolve(parseReference(`${up.host}/team/app:v1`))).endpoint.host).toBe(mir.host);
    expect(up.requests).toHaveLength(0);
  });

  it('rejects a mirror that is not an http(s) URL', () => {
    expect(() => new RegistryClient({ hosts: { 'docker.io': { mirrors: ['ftp://mirror'] } } })).toThrow(/docker\.io.*ftp:\/\/mirror/);
  });
});
