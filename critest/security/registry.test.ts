// Attacks on the pull path from hostile registries, end to end: a real crib daemon pulls, through
// the CRI as kubelet would, from small HTTP registries that record every Authorization header
// they receive and serve crafted content. Credentials must reach only the registry they belong
// to, never a mirror, never plain http off this machine; every size a registry controls, and the
// time a download may take, must be bounded, with the config key named, and nothing left behind.
// After each attack an honest pull still works.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from '../../test-support/daemon.js';
import { addOffLoopbackAddress, type OffLoopbackAddress } from '../../test-support/off-loopback-address.js';
import { configFor, craftImage, hugeManifest, smallLayer, zeroFileLayer, type CraftedImage } from '../../test-support/hostile-images.js';
import { startHostileRegistry, type HostileAuth, type HostileRegistry } from '../../test-support/hostile-registry.js';
import { MT } from '../../test-support/image-builder.js';

const MiB = 1 << 20;
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const USER = { username: 'kubelet-user', password: 'pull-secret-do-not-leak' };
const MIRROR_USER = { username: 'mirror-user', password: 'mirror-secret' };

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe('hostile registries', () => {
  let net: OffLoopbackAddress;
  let d: TestDaemon;
  let honest: HostileRegistry;
  // Test 1: a registry with a mirror that demands credentials, and one whose mirror has its own.
  let upstream: HostileRegistry;
  let mirror: HostileRegistry;
  let upstream2: HostileRegistry;
  let mirror2: HostileRegistry;
  // Test 2: credentials for A used to pull from B.
  let regA: HostileRegistry;
  let regB: HostileRegistry;
  // Test 3: plain-http registries on a non-loopback address, one configured insecure.
  let offHost: HostileRegistry;
  let offHostInsecure: HostileRegistry;
  let tokenClient: HostileRegistry;
  let upstream3: HostileRegistry;
  // Test 4: blob redirects.
  let redirecting: HostileRegistry;
  let cdn: HostileRegistry;
  let redirectingToHttp: HostileRegistry;
  // Tests 5-8: crafted content.
  let crafted: HostileRegistry;

  const app = craftImage([smallLayer('hello', 'honest content\n')]);
  const serveApp = (r: HostileRegistry, repo = 'team/app') => r.serveImage(repo, 'v1', app);

  beforeAll(async () => {
    net = await addOffLoopbackAddress();
    const local = (auth?: HostileAuth) => startHostileRegistry({ auth });
    honest = await local();
    upstream = await local({ kind: 'basic', ...USER });
    mirror = await local({ kind: 'basic', username: 'nobody', password: 'never-given' });
    upstream2 = await local({ kind: 'basic', ...USER });
    mirror2 = await local({ kind: 'basic', ...MIRROR_USER });
    regA = await local({ kind: 'basic', ...USER });
    regB = await local({ kind: 'basic', ...USER });
    offHost = await startHostileRegistry({ address: net.address, auth: { kind: 'basic', ...USER } });
    offHostInsecure = await startHostileRegistry({ address: net.address, auth: { kind: 'basic', ...USER } });
    offHost.tokenUsers.push(USER);
    tokenClient = await local({ kind: 'bearer', realm: `${offHost.url}/token` });
    upstream3 = await local();
    redirecting = await local({ kind: 'basic', ...USER });
    cdn = await local();
    redirectingToHttp = await local();
    crafted = await local();
    redirecting.redirectBlobsTo = cdn.url;
    redirectingToHttp.redirectBlobsTo = offHost.url;
    for (const r of [honest, upstream, mirror, upstream2, mirror2, regA, regB, offHost, offHostInsecure, tokenClient, upstream3, redirecting, cdn, redirectingToHttp]) {
      serveApp(r);
    }
    d = await startDaemon({
      toml: [
        '[image]', 'retries = 1', 'pull_progress_timeout = "5s"', 'max_layer_size = "64MiB"', 'max_image_size = "80MiB"',
        // Test 9: loopback beats 4 KiB/s by far, so only the trickling registry meets the floor.
        'pull_min_rate = "4KiB"', 'pull_min_rate_grace = "2s"',
        `[registry."${upstream.host}"]`, `mirrors = ["${mirror.url}"]`,
        `[registry."${upstream2.host}"]`, `mirrors = ["${mirror2.url}"]`,
        `[registry."${mirror2.host}".auth]`, `username = "${MIRROR_USER.username}"`, `password = "${MIRROR_USER.password}"`,
        `[registry."${offHostInsecure.host}"]`, 'insecure = true',
        // A plain-http mirror off this machine, with credentials of its own, not marked insecure.
        `[registry."${upstream3.host}"]`, `mirrors = ["${offHost.url}"]`,
        `[registry."${offHost.host}".auth]`, `username = "${USER.username}"`, `password = "${USER.password}"`,
      ].join('\n'),
    });
  });

  afterAll(async () => {
    await d?.cleanup();
    for (const r of [honest, upstream, mirror, upstream2, mirror2, regA, regB, offHost, offHostInsecure, tokenClient, upstream3, redirecting, cdn, redirectingToHttp, crafted]) {
      await r?.stop();
    }
    await net?.remove();
  });

  // Each attack starts without the test image, so none is served from an earlier test's pull.
  beforeEach(async () => {
    await d.cri.image.RemoveImage({ image: { image: app.config.digest } });
  });

  const pull = (image: string, auth?: Record<string, string>) => d.cri.image.PullImage({ image: { image }, ...(auth ? { auth } : {}) });

  /** The request's credentials, as they would appear on the wire. */
  const requestCreds = basic(USER.username, USER.password);

  async function honestPullStillWorks(): Promise<void> {
    const ref = `${honest.host}/team/app:v1`;
    const res = await pull(ref);
    expect(res.imageRef).toBe(app.config.digest);
    await d.cri.image.RemoveImage({ image: { image: ref } });
  }

  function leftovers() {
    const content = readdirSync(join(d.root, 'content', 'sha256'));
    const ingest = readdirSync(join(d.root, 'content', 'ingest'));
    const snapshots = readdirSync(join(d.root, 'snapshots')).filter((n) => /^\d+$/.test(n) || n.startsWith('tmp-'));
    const tmp = existsSync(join(d.root, 'tmp')) ? readdirSync(join(d.root, 'tmp')) : [];
    return { content, ingest, snapshots, tmp };
  }

  async function expectNothingLeftBehind(before: ReturnType<typeof leftovers>, image: string): Promise<void> {
    expect(leftovers()).toEqual(before);
    expect((await d.cri.image.ImageStatus({ image: { image } })).image).toBeNull();
  }

  it('(1) never sends PullImage credentials to a mirror; the registry itself gets them', async () => {
    const res = await pull(`${upstream.host}/team/app:v1`, USER);
    expect(res.imageRef).toBe(app.config.digest);
    // The mirror was asked first and challenged; it never saw the kubelet's credentials.
    expect(mirror.requests.length).toBeGreaterThan(0);
    expect(mirror.authorized()).toEqual([]);
    expect(upstream.authorized().map((r) => r.authorization)).toContain(requestCreds);

    // A mirror with credentials of its own in the config gets those, and only those.
    const res2 = await pull(`${upstream2.host}/team/app:v1`, USER);
    expect(res2.imageRef).toBe(app.config.digest);
    const seen = new Set(mirror2.authorized().map((r) => r.authorization));
    expect(seen).toEqual(new Set([basic(MIRROR_USER.username, MIRROR_USER.password)]));
    expect(upstream2.requests).toEqual([]);
    await d.cri.image.RemoveImage({ image: { image: app.config.digest } });
    await honestPullStillWorks();
  });

  it('(2) credentials whose server_address names host A are never sent to host B', async () => {
    // kubelet's spellings of A: a URL with scheme and path, and a bare host:port.
    for (const serverAddress of [`http://${regA.host}/v1/`, regA.host]) {
      await expect(pull(`${regB.host}/team/app:v1`, { ...USER, serverAddress })).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    }
    expect(regB.requests.length).toBeGreaterThan(0);
    expect(regB.authorized()).toEqual([]);
    expect(regA.requests).toEqual([]);
    // Named for B (in its URL form), they are B's and B gets them.
    const ok = await pull(`${regB.host}/team/app:v1`, { ...USER, serverAddress: `https://${regB.host}/` });
    expect(ok.imageRef).toBe(app.config.digest);
    expect(regB.authorized().map((r) => r.authorization)).toContain(requestCreds);
    await d.cri.image.RemoveImage({ image: { image: app.config.digest } });
    await honestPullStillWorks();
  });

  it('(3) sends no credentials over plain http to a host off this machine unless it is configured insecure', async () => {
    // Not configured: only https is tried, which this host does not speak; nothing is sent.
    await expect(pull(`${offHost.host}/team/app:v1`, USER)).rejects.toMatchObject({ code: status.UNAVAILABLE });
    expect(offHost.authorized()).toEqual([]);

    // Configured insecure: plain http is the operator's choice, and the credentials go.
    const ok = await pull(`${offHostInsecure.host}/team/app:v1`, USER);
    expect(ok.imageRef).toBe(app.config.digest);
    expect(offHostInsecure.authorized().map((r) => r.authorization)).toContain(requestCreds);
    await d.cri.image.RemoveImage({ image: { image: app.config.digest } });

    // A loopback registry naming a plain-http token realm off this machine: refused, and the
    // realm never sees the credentials.
    const err = await pull(`${tokenClient.host}/team/app:v1`, USER).catch((e: { code: number; details: string }) => e);
    expect(err).toMatchObject({ code: status.FAILED_PRECONDITION });
    expect((err as { details: string }).details).toContain(`insecure = true under [registry."${offHost.host}"]`);
    expect(offHost.requests.filter((r) => r.path.startsWith('/token'))).toEqual([]);

    // A plain-http mirror off this machine with credentials in the config, not marked insecure:
    // the credentials are withheld, the mirror is skipped, the registry itself serves the pull.
    const before = offHost.requests.length;
    const viaUpstream = await pull(`${upstream3.host}/team/app:v1`);
    expect(viaUpstream.imageRef).toBe(app.config.digest);
    expect(offHost.requests.length).toBeGreaterThan(before);
    expect(offHost.authorized()).toEqual([]);
    expect(d.output()).not.toContain(USER.password);
    await d.cri.image.RemoveImage({ image: { image: app.config.digest } });
    await honestPullStillWorks();
  });

  it('(4) a blob redirect to another host carries no credentials, and plain http off this machine is refused', async () => {
    const ok = await pull(`${redirecting.host}/team/app:v1`, USER);
    expect(ok.imageRef).toBe(app.config.digest);
    expect(redirecting.authorized().length).toBeGreaterThan(0);
    expect(cdn.requests.filter((r) => r.path.includes('/blobs/')).length).toBeGreaterThan(0);
    expect(cdn.authorized()).toEqual([]);
    await d.cri.image.RemoveImage({ image: { image: app.config.digest } });

    const before = leftovers();
    const seen = offHost.requests.length;
    const err = await pull(`${redirectingToHttp.host}/team/app:v1`).catch((e: { code: number; details: string }) => e);
    expect(err).toMatchObject({ code: status.FAILED_PRECONDITION });
    expect((err as { details: string }).details).toContain(`redirected`);
    expect((err as { details: string }).details).toContain(offHost.url);
    expect(offHost.requests.length).toBe(seen);
    await expectNothingLeftBehind(before, `${redirectingToHttp.host}/team/app:v1`);
    await honestPullStillWorks();
  });

  it('(5) a gzip bomb layer fails at image.max_layer_size, without memory growth and leaving nothing', async () => {
    const bomb = zeroFileLayer(5 * 1024 * MiB, 'bomb');
    expect(bomb.size).toBeLessThan(6 * MiB);
    const image = craftImage([bomb]);
    crafted.serveImage('bomb/layer', 'v1', image);
    await honestPullStillWorks(); // warm up the daemon before measuring
    const before = leftovers();
    const rss0 = rssBytes(d.proc.pid!);
    const started = Date.now();
    const err = await pull(`${crafted.host}/bomb/layer:v1`).catch((e: { code: number; details: string }) => e);
    expect(err).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    expect((err as { details: string }).details).toContain('image.max_layer_size');
    expect((err as { details: string }).details).toContain(bomb.digest);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(rssBytes(d.proc.pid!) - rss0).toBeLessThan(100 * MiB);
    await expectNothingLeftBehind(before, `${crafted.host}/bomb/layer:v1`);
    await honestPullStillWorks();
  });

  it('(6) layers each under image.max_layer_size but together over image.max_image_size fail naming it', async () => {
    const image = craftImage([zeroFileLayer(48 * MiB, 'one'), zeroFileLayer(48 * MiB, 'two')]);
    crafted.serveImage('bomb/image', 'v1', image);
    const before = leftovers();
    const err = await pull(`${crafted.host}/bomb/image:v1`).catch((e: { code: number; details: string }) => e);
    expect(err).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    expect((err as { details: string }).details).toContain('image.max_image_size');
    await expectNothingLeftBehind(before, `${crafted.host}/bomb/image:v1`);
    await honestPullStillWorks();
  });

  it('(7) a 200 MiB config blob is refused before it is downloaded; a lying one is cut off', async () => {
    const layer = smallLayer('f', 'config test\n');
    const big = craftImage([layer], configFor([layer], 200 * MiB));
    expect(big.config.size).toBeGreaterThanOrEqual(200 * MiB);
    crafted.serveImage('big/config', 'v1', big);
    const before = leftovers();
    const rss0 = rssBytes(d.proc.pid!);
    const err = await pull(`${crafted.host}/big/config:v1`).catch((e: { code: number; details: string }) => e);
    expect(err).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    expect((err as { details: string }).details).toContain('image.max_config_size');
    expect(rssBytes(d.proc.pid!) - rss0).toBeLessThan(50 * MiB);
    expect(crafted.requests.filter((r) => r.path.includes(big.config.digest))).toEqual([]);
    await expectNothingLeftBehind(before, `${crafted.host}/big/config:v1`);

    // The manifest claims a small config, the registry announces and streams 200 MiB.
    const liar: CraftedImage = craftImage([layer], big.config.bytes, 1000);
    crafted.serveImage('big/liar', 'v1', liar);
    const rss1 = rssBytes(d.proc.pid!);
    await expect(pull(`${crafted.host}/big/liar:v1`)).rejects.toMatchObject({ code: status.DATA_LOSS });
    expect(rssBytes(d.proc.pid!) - rss1).toBeLessThan(50 * MiB);
    await expectNothingLeftBehind(before, `${crafted.host}/big/liar:v1`);
    await honestPullStillWorks();
  });

  it('(8) an oversized or endless manifest fails at image.max_manifest_size', async () => {
    crafted.serveManifest('big/manifest', 'v1', MT.ociManifest, hugeManifest(5 * MiB));
    const before = leftovers();
    const err = await pull(`${crafted.host}/big/manifest:v1`).catch((e: { code: number; details: string }) => e);
    expect(err).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    expect((err as { details: string }).details).toContain('image.max_manifest_size');

    // No Content-Length and no end: the daemon stops reading at the limit and hangs up.
    let sent = 0;
    let closed = false;
    crafted.handle((req, res) => {
      if (!req.url?.startsWith('/v2/endless/manifest/manifests/')) return false;
      res.writeHead(200, { 'content-type': MT.ociManifest });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!closed && res.write(chunk)) sent += chunk.length;
        if (!closed) res.once('drain', pump);
      };
      res.on('close', () => (closed = true));
      pump();
      return true;
    });
    const endless = await pull(`${crafted.host}/endless/manifest:v1`).catch((e: { code: number; details: string }) => e);
    expect(endless).toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    expect((endless as { details: string }).details).toContain('image.max_manifest_size');
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toBe(true);
    expect(sent).toBeLessThan(64 * MiB);
    crafted.clearHandlers();
    await expectNothingLeftBehind(before, `${crafted.host}/big/manifest:v1`);
    await honestPullStillWorks();
  });

  it('(9) a layer trickled a byte at a time, beating pull_progress_timeout, fails at image.pull_min_rate, leaving nothing', async () => {
    // A byte every 200 ms keeps the 5 s progress timeout from ever firing; 64 KiB of layer at
    // that pace would take an hour and a half.
    const slow = craftImage([smallLayer('noise', randomBytes(48 * 1024).toString('base64'))]);
    const layer = slow.layers[0]!;
    expect(layer.size).toBeGreaterThan(32 * 1024);
    crafted.serveImage('slow/app', 'v1', slow);
    let sent = 0;
    let closed = false;
    crafted.handle((req, res) => {
      if (req.url !== `/v2/slow/app/blobs/${layer.digest}`) return false;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': layer.size });
      const ticker = setInterval(() => {
        if (sent < layer.size) res.write(layer.blob.subarray(sent, ++sent));
      }, 200);
      res.on('close', () => {
        closed = true;
        clearInterval(ticker);
      });
      return true;
    });
    const before = leftovers();
    const started = Date.now();
    const err = await pull(`${crafted.host}/slow/app:v1`).catch((e: { code: number; details: string }) => e);
    const elapsed = Date.now() - started;
    expect(err).toMatchObject({ code: status.DEADLINE_EXCEEDED });
    const details = (err as { details: string }).details;
    expect(details).toContain(`pull of layer ${layer.digest} too slow: `);
    expect(details).toMatch(/ \d+ bytes received in \d+(\.\d)?s /);
    expect(details).toContain('image.pull_min_rate');
    expect(elapsed).toBeGreaterThanOrEqual(2000);
    expect(elapsed).toBeLessThan(15_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(closed).toBe(true);
    expect(sent).toBeLessThan(200);
    crafted.clearHandlers();
    await expectNothingLeftBehind(before, `${crafted.host}/slow/app:v1`);
    await honestPullStillWorks();
  });
});
