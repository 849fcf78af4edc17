// ImageService end to end: a real crib daemon pulling from Debian's real docker-registry on
// 127.0.0.1, serving images this test builds (busybox-static rootfs), plus faults injected by a
// proxy in front of it. Every check goes through the CRI, as kubelet's calls would.
import { execFile } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { startFaultProxy, type FaultProxy } from '../test-support/fault-proxy.js';
import {
  buildImage, busyboxRootfsLayer, layerFromEntries, platformImage, pushBusybox, pushImage, pushIndex,
  writeDockerSaveArchive, writeOciArchive, type BuiltImage,
} from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';
import { lgetxattr } from '../src/sys/libc.js';

const run = promisify(execFile);

/** Every committed snapshot's fs dir, by the chain id in its record. */
function snapshotDirs(root: string): Map<string, string> {
  const dir = join(root, 'snapshots');
  const out = new Map<string, string>();
  for (const name of readdirSync(dir)) {
    if (!/^\d+$/.test(name)) continue;
    const rec = JSON.parse(readFileSync(join(dir, name, 'snapshot.json'), 'utf8')) as { chainId: string };
    out.set(rec.chainId, join(dir, name, 'fs'));
  }
  return out;
}

/** A busybox image whose layer is unique to `marker`, so no earlier pull already has it. */
async function pushUniqueBusybox(registry: TestRegistry, repo: string, marker: string): Promise<BuiltImage> {
  const layer = await busyboxRootfsLayer({ extra: [{ type: 'file', path: 'marker', content: marker }] });
  const image = buildImage({ layers: [layer], config: { Cmd: ['/bin/sh'] } });
  await pushImage(registry, repo, 'v1', image);
  return image;
}

function blobCount(root: string): number {
  return readdirSync(join(root, 'content', 'sha256')).length;
}

describe('ImageService against a real registry', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let d: TestDaemon;
  let busybox: { image: BuiltImage; digest: string };
  let tmp: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'crib-img-'));
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.url);
    busybox = await pushBusybox(registry, 'library/busybox', 'latest');
    // docker.io is mirrored by the loopback registry: the mirror feature a node operator uses.
    d = await startDaemon({
      toml: `[image]\npull_progress_timeout = "2s"\nretries = 2\n[registry."docker.io"]\nmirrors = ["${registry.url}"]\n`,
    });
  });
  afterAll(async () => {
    await d?.cleanup();
    await proxy?.stop();
    await registry?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('pulls by tag, lists, and reports status by tag, id and digest', async () => {
    const ref = `${registry.host}/library/busybox:latest`;
    const res = await d.cri.image.PullImage({ image: { image: ref } });
    expect(res.imageRef).toBe(busybox.image.config.digest);

    const { images } = await d.cri.image.ListImages({});
    const img = images.find((i: { id: string }) => i.id === res.imageRef);
    expect(img.repoTags).toEqual([ref]);
    expect(img.repoDigests).toEqual([`${registry.host}/library/busybox@${busybox.digest}`]);
    expect(Number(img.size)).toBe(busybox.image.config.size + busybox.image.layers[0]!.size);

    for (const q of [ref, res.imageRef, res.imageRef.slice(7, 19), `${registry.host}/library/busybox@${busybox.digest}`]) {
      const st = await d.cri.image.ImageStatus({ image: { image: q } });
      expect(st.image?.id, q).toBe(res.imageRef);
    }
    const verbose = await d.cri.image.ImageStatus({ image: { image: ref }, verbose: true });
    expect(JSON.parse(verbose.info.info).imageSpec.config.Cmd).toEqual(['/bin/sh']);

    // The layer is unpacked for real: busybox is in its snapshot, applets are symlinks to it.
    const [fs] = [...snapshotDirs(d.root).values()];
    expect(lstatSync(join(fs!, 'bin/busybox')).mode & 0o777).toBe(0o755);
    expect(lstatSync(join(fs!, 'bin/sh')).isSymbolicLink()).toBe(true);
  });

  it('normalises docker.io names and pulls them through the configured mirror', async () => {
    const res = await d.cri.image.PullImage({ image: { image: 'busybox' } });
    expect(res.imageRef).toBe(busybox.image.config.digest);
    const st = await d.cri.image.ImageStatus({ image: { image: 'docker.io/library/busybox:latest' } });
    expect(st.image.repoTags).toContain('docker.io/library/busybox:latest');
  });

  it('reports a missing image as absent in ImageStatus, and a malformed reference as INVALID_ARGUMENT', async () => {
    const st = await d.cri.image.ImageStatus({ image: { image: `${registry.host}/nope:1` } });
    expect(st.image).toBeNull();
    await expect(d.cri.image.PullImage({ image: { image: 'UPPER/Case::bad' } })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringContaining('UPPER/Case::bad'),
    });
    await expect(d.cri.image.PullImage({ image: { image: '' } })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  it('answers NOT_FOUND for a manifest the registry does not have, and leaves nothing behind', async () => {
    const before = blobCount(d.root);
    await expect(d.cri.image.PullImage({ image: { image: `${registry.host}/library/missing:1` } })).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
    expect(blobCount(d.root)).toBe(before);
  });

  it('selects the host platform from a multi-arch index', async () => {
    const platforms = [
      { os: 'linux', architecture: 'arm64' },
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ];
    const entries = await Promise.all(platforms.map(async (p) => ({ platform: p, image: await platformImage(p) })));
    const { digest } = await pushIndex(registry, 'multi/arch', 'v1', entries);
    const res = await d.cri.image.PullImage({ image: { image: `${registry.host}/multi/arch:v1` } });
    const host = entries.find((e) => e.platform.architecture === (process.arch === 'x64' ? 'amd64' : process.arch))!;
    expect(res.imageRef).toBe(host.image.config.digest);
    const st = await d.cri.image.ImageStatus({ image: { image: res.imageRef } });
    // The repo digest names the index, so a pull by that digest gives the same image.
    expect(st.image.repoDigests).toEqual([`${registry.host}/multi/arch@${digest}`]);
    const chainId = JSON.parse((await d.cri.image.ImageStatus({ image: { image: res.imageRef }, verbose: true })).info.info).chainId;
    expect(readFileSync(join(snapshotDirs(d.root).get(chainId)!, 'platform'), 'utf8')).toBe(`linux/${host.platform.architecture}\n`);
  });

  it('unpacks gzip and zstd layers with whiteouts, opaque dirs, hardlinks and setuid files', async () => {
    const base = await layerFromEntries([
      { type: 'dir', path: 'data', mode: 0o755 },
      { type: 'file', path: 'data/gone', content: 'x' },
      { type: 'dir', path: 'opaque', mode: 0o755 },
      { type: 'file', path: 'opaque/old', content: 'old' },
    ], 'gzip');
    const top = await layerFromEntries([
      { type: 'whiteout', path: 'data/gone' },
      { type: 'opaque', path: 'opaque' },
      { type: 'file', path: 'opaque/new', content: 'new' },
      { type: 'file', path: 'suid', content: '#!/bin/sh\n', mode: 0o4755 },
      { type: 'hardlink', path: 'suid-link', target: 'suid' },
      { type: 'symlink', path: 'abs-link', target: '/etc/passwd' },
    ], 'zstd');
    const image = buildImage({ layers: [base, top] });
    await pushImage(registry, 'layers/test', 'v1', image);
    const res = await d.cri.image.PullImage({ image: { image: `${registry.host}/layers/test:v1` } });
    expect(res.imageRef).toBe(image.config.digest);
    const info = JSON.parse((await d.cri.image.ImageStatus({ image: { image: res.imageRef }, verbose: true })).info.info);
    const topDir = snapshotDirs(d.root).get(info.chainId)!;
    const wh = lstatSync(join(topDir, 'data/gone'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(lgetxattr(join(topDir, 'opaque'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(lstatSync(join(topDir, 'suid')).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(topDir, 'suid-link')).ino).toBe(lstatSync(join(topDir, 'suid')).ino);
  });

  it('shares one download between concurrent pulls of the same image', async () => {
    const image = await pushUniqueBusybox(registry, 'shared/pull', 'SHARED=1');
    const ref = `${proxy.host}/shared/pull:v1`;
    const results = await Promise.all([1, 2, 3].map(() => d.cri.image.PullImage({ image: { image: ref } })));
    expect(new Set(results.map((r) => r.imageRef))).toEqual(new Set([image.config.digest]));
    expect(proxy.count(new RegExp(`/blobs/${image.layers[0]!.digest}`), 'GET')).toBe(1);
  });

  it('resumes a blob whose connection is cut mid-way and retries a 500', async () => {
    const image = await pushUniqueBusybox(registry, 'faults/cut', 'CUT=1');
    proxy.addRule({ method: 'GET', path: new RegExp(image.layers[0]!.digest), action: 'cut', afterBytes: 100_000, times: 1 });
    proxy.addRule({ method: 'GET', path: /\/manifests\/v1$/, action: 'error500', times: 1 });
    const res = await d.cri.image.PullImage({ image: { image: `${proxy.host}/faults/cut:v1` } });
    expect(res.imageRef).toBe(image.config.digest);
    proxy.clearRules();
  });

  it('fails a blob that does not match its digest with DATA_LOSS and leaves nothing behind', async () => {
    const image = await pushUniqueBusybox(registry, 'faults/corrupt', 'CORRUPT=1');
    proxy.addRule({ method: 'GET', path: new RegExp(image.layers[0]!.digest), action: 'corrupt', afterBytes: 1000 });
    const blobsBefore = blobCount(d.root);
    const snapsBefore = snapshotDirs(d.root).size;
    await expect(d.cri.image.PullImage({ image: { image: `${proxy.host}/faults/corrupt:v1` } })).rejects.toMatchObject({
      code: status.DATA_LOSS,
      details: expect.stringContaining(image.layers[0]!.digest),
    });
    proxy.clearRules();
    expect(blobCount(d.root)).toBe(blobsBefore);
    expect(snapshotDirs(d.root).size).toBe(snapsBefore);
    expect(readdirSync(join(d.root, 'content', 'ingest'))).toEqual([]);
    const st = await d.cri.image.ImageStatus({ image: { image: `${proxy.host}/faults/corrupt:v1` } });
    expect(st.image).toBeNull();
  });

  it('aborts a stalled pull with DEADLINE_EXCEEDED naming the layer', async () => {
    const image = await pushUniqueBusybox(registry, 'faults/stall', 'STALL=1');
    proxy.addRule({ method: 'GET', path: new RegExp(image.layers[0]!.digest), action: 'stall', afterBytes: 1000 });
    const started = Date.now();
    await expect(d.cri.image.PullImage({ image: { image: `${proxy.host}/faults/stall:v1` } })).rejects.toMatchObject({
      code: status.DEADLINE_EXCEEDED,
      details: expect.stringContaining(image.layers[0]!.digest),
    });
    expect(Date.now() - started).toBeLessThan(30_000);
    proxy.clearRules();
  });

  it('gives up on a config blob that stalls, after headers or before them, within pull_progress_timeout', async () => {
    // The daemon's pull_progress_timeout is 2s; request_timeout is the default 30s, so a
    // registry that never sends its headers used to be waited for 3 x 30s.
    for (const action of ['stall', 'hang'] as const) {
      const image = await pushUniqueBusybox(registry, `faults/config-${action}`, `CONFIG_${action}=1`);
      proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${image.config.digest}`), action, afterBytes: 0 });
      const started = Date.now();
      await expect(d.cri.image.PullImage({ image: { image: `${proxy.host}/faults/config-${action}:v1` } })).rejects.toMatchObject({
        code: status.DEADLINE_EXCEEDED,
        details: expect.stringContaining(`pull of config ${image.config.digest} stalled`),
      });
      expect(Date.now() - started).toBeLessThan(15_000);
      proxy.clearRules();
      expect(readdirSync(join(d.root, 'content', 'ingest'))).toEqual([]);
    }
  });

  it('removes an image by tag with all its tags, collects its blobs and snapshots, and is idempotent', async () => {
    const shared = await busyboxRootfsLayer();
    const extraA = await layerFromEntries([{ type: 'file', path: 'a', content: 'a' }]);
    const extraB = await layerFromEntries([{ type: 'file', path: 'b', content: 'b' }]);
    const a = buildImage({ layers: [shared, extraA] });
    const b = buildImage({ layers: [shared, extraB] });
    await pushImage(registry, 'gc/a', 'v1', a);
    await pushImage(registry, 'gc/b', 'v1', b);
    const fsBefore = await d.cri.image.ImageFsInfo({});
    await d.cri.image.PullImage({ image: { image: `${registry.host}/gc/a:v1` } });
    await d.cri.image.PullImage({ image: { image: `${registry.host}/gc/b:v1` } });
    const fsAfter = await d.cri.image.ImageFsInfo({});
    expect(Number(fsAfter.imageFilesystems[0].usedBytes.value)).toBeGreaterThan(Number(fsBefore.imageFilesystems[0].usedBytes.value));
    expect(Number(fsAfter.imageFilesystems[0].inodesUsed.value)).toBeGreaterThan(0);

    await d.cri.image.RemoveImage({ image: { image: `${registry.host}/gc/a:v1` } });
    expect((await d.cri.image.ImageStatus({ image: { image: a.config.digest } })).image).toBeNull();
    const content = readdirSync(join(d.root, 'content', 'sha256'));
    expect(content).not.toContain(extraA.digest.slice(7));
    expect(content).not.toContain(a.config.digest.slice(7));
    // The shared base layer stays: image b still needs it.
    expect(content).toContain(shared.digest.slice(7));
    expect((await d.cri.image.ImageStatus({ image: { image: `${registry.host}/gc/b:v1` } })).image.id).toBe(b.config.digest);
    await d.cri.image.RemoveImage({ image: { image: `${registry.host}/gc/a:v1` } });
    await d.cri.image.RemoveImage({ image: { image: b.config.digest } });
    expect(readdirSync(join(d.root, 'content', 'sha256'))).not.toContain(extraB.digest.slice(7));
  });

  it('imports OCI layout and docker save archives through `crib image import`', async () => {
    const oci = buildImage({ layers: [await layerFromEntries([{ type: 'file', path: 'oci', content: 'oci' }])] });
    const docker = buildImage({ layers: [await layerFromEntries([{ type: 'file', path: 'docker', content: 'd' }], 'none')], mediaTypes: 'docker' });
    await writeOciArchive(join(tmp, 'oci.tar'), [{ image: oci, name: 'example.com/app/oci:1.0' }]);
    await writeDockerSaveArchive(join(tmp, 'docker.tar'), [{ image: docker, names: ['saved:2'] }]);
    for (const file of ['oci.tar', 'docker.tar']) {
      await run(process.execPath, [CLI, 'image', 'import', '--address', `unix://${d.socket}`, join(tmp, file)]);
    }
    expect((await d.cri.image.ImageStatus({ image: { image: 'example.com/app/oci:1.0' } })).image.id).toBe(oci.config.digest);
    expect((await d.cri.image.ImageStatus({ image: { image: 'saved:2' } })).image.id).toBe(docker.config.digest);
    const bad = await run(process.execPath, [CLI, 'image', 'import', '--address', `unix://${d.socket}`, join(tmp, 'nope.tar')]).catch((e: { stderr: string }) => e);
    expect((bad as { stderr: string }).stderr).toMatch(/does not exist/);
  });

  it('keeps image records across a daemon restart', async () => {
    const before = (await d.cri.image.ListImages({})).images.map((i: { id: string }) => i.id).sort();
    await d.stop();
    d = await startDaemon({ dir: d.dir });
    const after = (await d.cri.image.ListImages({})).images.map((i: { id: string }) => i.id).sort();
    expect(after).toEqual(before);
    const streamed = (await d.cri.image.StreamImages({})).flatMap((r: { images: { id: string }[] }) => r.images.map((i) => i.id)).sort();
    expect(streamed).toEqual(before);
    expect(existsSync(join(d.root, 'content', 'ingest'))).toBe(true);
  });
});

describe('ImageService with authenticating registries', () => {
  let basic: TestRegistry;
  let token: TestRegistry;
  let d: TestDaemon;
  beforeAll(async () => {
    basic = await startRegistry({ auth: 'basic' });
    token = await startRegistry({ auth: 'token' });
    await pushBusybox(basic, 'private/busybox', 'v1');
    await pushBusybox(token, 'private/busybox', 'v1');
    d = await startDaemon();
  });
  afterAll(async () => {
    await d?.cleanup();
    await basic?.stop();
    await token?.stop();
  });

  it('pulls from a basic-auth registry with the CRI credentials and refuses without them', async () => {
    const ref = `${basic.host}/private/busybox:v1`;
    const user = basic.users[0]!;
    await expect(d.cri.image.PullImage({ image: { image: ref } })).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    await expect(d.cri.image.PullImage({ image: { image: ref }, auth: { username: user.username, password: 'wrong-secret-123' } }))
      .rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    const res = await d.cri.image.PullImage({ image: { image: ref }, auth: { username: user.username, password: user.password } });
    expect(res.imageRef).toMatch(/^sha256:/);
    // Credentials never reach the log.
    expect(d.output()).not.toContain(user.password);
    expect(d.output()).not.toContain('wrong-secret-123');
  });

  it('pulls from a token-auth registry through the WWW-Authenticate challenge', async () => {
    const user = token.users[0]!;
    const auth = Buffer.from(`${user.username}:${user.password}`).toString('base64');
    const res = await d.cri.image.PullImage({ image: { image: `${token.host}/private/busybox:v1` }, auth: { auth } });
    expect(res.imageRef).toMatch(/^sha256:/);
    expect(token.tokenServer!.requests.length).toBeGreaterThan(0);
    expect(d.output()).not.toContain(user.password);
  });
});
