// CheckpointContainer and restore through the CRI, the whole daemon flow, where Debian's criu
// works (the guest's Debian 6.1 kernel; on the host's 6.18 criu 3.17 cannot read the vDSO, see
// critest/checkpoint.test.ts). A container counts, writes a file into its rootfs, deletes a file
// of its image and replaces a directory of its image (rm -rf, mkdir: an opaque dir in its upper
// dir). It is checkpointed to an archive in checkpointctl's layout, which is read back here; then
// a container is created in a NEW pod with the archive as its image and started: its count goes
// on from where the checkpoint took it, its file changes are there, and its bind-mounted files
// (/etc/hostname, /etc/hosts) are the new pod's, not the old one's. The original keeps running.
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type TarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lazyModule } from '../../src/sys/lazy-module.js';
import { guest, waitFor, type Guest } from '../support.js';

const tarStream = lazyModule<typeof TarStream>('tar-stream');

/** Every entry of a tar: name -> its type and content. */
async function readTar(path: string): Promise<Map<string, { type: string; body: Buffer }>> {
  const entries = new Map<string, { type: string; body: Buffer }>();
  const extract = tarStream().extract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (d: unknown) => chunks.push(d as Buffer));
    stream.on('end', () => {
      entries.set(header.name, { type: header.type ?? 'file', body: Buffer.concat(chunks) });
      next();
    });
  });
  await pipeline(createReadStream(path), extract);
  return entries;
}

// Counts on from its own i (a restored process continues its loop with the i it had), into a
// file of its rootfs and to stdout; before that it changes its rootfs once.
const SCRIPT = [
  'echo made-by-the-container > /written',
  'rm /var/www/index.html',
  'rm -rf /home && mkdir /home && echo only-this > /home/replaced',
  'i=0; while :; do i=$((i+1)); echo $i > /counter; echo $i; sleep 0.2; done',
].join('; ');

describe('CheckpointContainer and restore in a new pod', () => {
  let g: Guest;
  let out: string;

  beforeAll(async () => {
    g = guest('checkpoint');
    out = await mkdtemp(join(tmpdir(), 'crib-guest-ckpt-'));
  });
  afterAll(async () => {
    await g?.cleanup();
    if (out) await rm(out, { recursive: true, force: true });
  });

  const count = async (id: string) => Number((await g.exec(id, 'cat /counter')).stdout.trim());
  /** The numbers the container wrote to its CRI log, in order. */
  const logged = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '').split('\n')
    .map((l) => l.split(' ')).filter((f) => f[1] === 'stdout').map((f) => Number(f.slice(3).join(' ')));

  it('checkpoints a counting container to an archive, and restores it in a new pod where it counts on', async () => {
    const t0 = Date.now();
    // Each container gets its own volume and termination-log file, as kubelet gives them.
    const mounts = (who: string) => {
      mkdirSync(join(out, who, 'data'), { recursive: true });
      writeFileSync(join(out, who, 'data', 'who'), `${who}\n`);
      writeFileSync(join(out, who, 'termination-log'), '');
      return [
        { containerPath: '/data', hostPath: join(out, who, 'data') },
        { containerPath: '/dev/termination-log', hostPath: join(out, who, 'termination-log') },
      ];
    };
    const src = await g.runPod('ckpt-src');
    const original = await g.runContainer(src.podSandboxId, src.config, 'count', SCRIPT, { mounts: mounts('old') });
    await waitFor('the counter to pass 3', async () => (await count(original)) > 3, 60_000);

    // ---- checkpoint
    const location = join(out, 'counter.tar');
    const before = await count(original);
    await g.cri.runtime.CheckpointContainer({ containerId: original, location, timeout: '240' });
    const tCheckpoint = Date.now();

    const entries = await readTar(location);
    const names = [...entries.keys()];
    for (const n of ['config.dump', 'spec.dump', 'rootfs-diff.tar', 'deleted.files', 'checkpoint/inventory.img',
      'checkpoint/descriptors.json']) expect(names).toContain(n);
    expect(names.filter((n) => n.startsWith('checkpoint/core-') && n.endsWith('.img')).length).toBeGreaterThan(0);
    const config = JSON.parse(entries.get('config.dump')!.body.toString());
    expect(config).toMatchObject({ id: original, name: 'count', rootfsImageName: g.image });
    const spec = JSON.parse(entries.get('spec.dump')!.body.toString());
    expect(spec.process.args).toEqual(['/bin/sh', '-c', SCRIPT]);
    expect(spec.mounts.find((m: { destination: string }) => m.destination === '/etc/hostname').source).toMatch(/./);
    const diffPath = join(out, 'rootfs-diff.tar');
    await writeFile(diffPath, entries.get('rootfs-diff.tar')!.body);
    const diff = await readTar(diffPath);
    expect(diff.get('written')?.body.toString()).toBe('made-by-the-container\n');
    const archivedCount = Number(diff.get('counter')?.body.toString());
    expect(archivedCount).toBeGreaterThanOrEqual(before);
    expect.soft(diff.has('var/www/.wh.index.html')).toBe(true);
    // The replaced dir: opaque, holding only what the container put there.
    expect.soft(diff.has('home/.wh..wh..opq')).toBe(true);
    expect(diff.get('home/replaced')?.body.toString()).toBe('only-this\n');
    const deleted = JSON.parse(entries.get('deleted.files')!.body.toString()) as string[];
    expect.soft(deleted).toContain('/var/www/index.html');
    expect.soft(deleted).toContain('/home');

    // The original was left running, and counts on.
    expect((await g.cri.runtime.ContainerStatus({ containerId: original })).status.state).toBe('CONTAINER_RUNNING');
    const afterCheckpoint = await count(original);
    await waitFor('the original to count on', async () => (await count(original)) > afterCheckpoint, 60_000);

    // ---- restore, in a new pod
    const dst = await g.runPod('ckpt-dst');
    const { containerId: restored } = await g.cri.runtime.CreateContainer({
      podSandboxId: dst.podSandboxId,
      config: { ...g.containerConfig('count', 'exit 99', { mounts: mounts('new') }), image: { image: location } },
      sandboxConfig: dst.config,
    });
    expect((await g.cri.runtime.ContainerStatus({ containerId: restored })).status.state).toBe('CONTAINER_CREATED');
    await g.cri.runtime.StartContainer({ containerId: restored });
    const tRestore = Date.now();
    expect((await g.cri.runtime.ContainerStatus({ containerId: restored })).status.state).toBe('CONTAINER_RUNNING');

    // Its count goes on from the checkpointed one, in its new log: the first number it writes
    // there follows one it had counted to before the checkpoint, never 1.
    const logPath = join(dst.config.logDirectory as string, 'count.log');
    const firstLogged = await waitFor('the restored counter\'s output in its new log', () => logged(logPath)[0], 60_000);
    expect(firstLogged).toBeGreaterThan(before);
    expect(firstLogged).toBeLessThanOrEqual(afterCheckpoint + 1);
    // Its files are of the moment of the dump (the container was paused from the dump until its
    // rootfs diff was written): the count in its file is the one it had counted to, or one short
    // (dumped between the count and the file's write), never one it had not reached.
    expect([archivedCount, archivedCount + 1], `the first count restored follows the archived file's ${archivedCount}`).toContain(firstLogged);
    const seen = logged(logPath);
    expect(seen).toEqual(seen.map((_, k) => firstLogged + k));
    await waitFor('the restored counter to count on', async () => (await count(restored)) > firstLogged + 2, 60_000);

    // It is in the NEW pod's namespaces (network, IPC, UTS), not copies of the old pod's.
    const podInfo = JSON.parse((await g.cri.runtime.PodSandboxStatus({ podSandboxId: dst.podSandboxId, verbose: true })).info.info!);
    const pid = JSON.parse((await g.cri.runtime.ContainerStatus({ containerId: restored, verbose: true })).info.info!).pid as number;
    for (const [ns, pinned] of [['net', podInfo.netns], ['ipc', podInfo.ipcns], ['uts', podInfo.utsns]] as const) {
      expect.soft(statSync(`/proc/${pid}/ns/${ns}`).ino, `the restored container's ${ns} namespace is its new pod's`).toBe(statSync(pinned).ino);
    }
    // The new pod's /dev/shm.
    writeFileSync(join(podInfo.files.shmPath, 'marker'), 'new pod shm\n');

    // Its file changes: the written file, the deleted one and the replaced dir stay as they were.
    const files = await g.exec(restored, [
      'cat /written', 'test -e /var/www/index.html && echo index-back || echo index-gone',
      'ls /home | tr "\\n" " "; echo', 'cat /etc/hostname', 'grep -c ckpt-dst /etc/hosts', 'grep -c ckpt-src /etc/hosts',
      'hostname', 'cat /data/who', 'cat /dev/shm/marker', 'echo restored-said-bye > /dev/termination-log',
    ].join('; '));
    const lines = files.stdout.split('\n');
    expect.soft(lines[0]).toBe('made-by-the-container');
    expect.soft(lines[1]).toBe('index-gone');
    // Only what the container made there: nothing of the image's /home.
    expect.soft(lines[2]!.trim()).toBe('replaced');
    // The bind-mounted files are the NEW pod's, and so is its hostname.
    expect.soft(lines[3]).toBe('ckpt-dst');
    expect.soft(Number(lines[4])).toBeGreaterThan(0);
    expect.soft(lines[5]).toBe('0');
    expect.soft(lines[6], 'hostname').toBe('ckpt-dst');
    expect.soft(lines[7], 'the volume').toBe('new');
    expect.soft(lines[8], '/dev/shm').toBe('new pod shm');
    expect.soft(readFileSync(join(out, 'new', 'termination-log'), 'utf8')).toBe('restored-said-bye\n');
    expect.soft(readFileSync(join(out, 'old', 'termination-log'), 'utf8')).toBe('');

    // The original is still running, and still counting, untouched by the restore.
    const o = await count(original);
    await waitFor('the original to count on after the restore', async () => (await count(original)) > o, 60_000);
    expect((await g.exec(original, 'cat /etc/hostname')).stdout.trim()).toBe('ckpt-src');

    await g.cri.runtime.RemovePodSandbox({ podSandboxId: dst.podSandboxId });
    await g.cri.runtime.RemovePodSandbox({ podSandboxId: src.podSandboxId });
    console.log(`[checkpoint] checkpoint ${((tCheckpoint - t0) / 1000).toFixed(1)} s from start, restore ${((tRestore - tCheckpoint) / 1000).toFixed(1)} s after it, total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, 600_000);
});
