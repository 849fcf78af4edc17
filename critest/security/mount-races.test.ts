// Mount races from a second container of the same pod (issue 10), through the CRI with a real
// daemon, registry and image. A "racer" container shares a volume (a host directory, as an
// emptyDir is) with the container under test and keeps swapping two names in it with a static
// path-racer baked into the image (test-support/path-racer.c), while the test creates the other
// container over and over: CreateContainer, StartContainer (the runtime's create, which makes the
// mounts, runs there), inspect its init from the host, RemoveContainer.
// Every create must either do what was asked or fail with a clear error naming what it refused;
// the racer's link must never take effect; and creates must really have met the link.
// The races crib-runtime can only meet outside the CRI (sysctls, /dev/console, a /proc symlink)
// are in native/test/runtime-races.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { startDaemon, waitFor, type TestDaemon } from '../../test-support/daemon.js';
import { buildImage, busyboxRootfsLayer, pushImage } from '../../test-support/image-builder.js';
import { podConfigFactory } from '../../test-support/cri-configs.js';
import { buildPathRacer, stopFile } from '../../test-support/path-racer.js';
import { startRegistry, type TestRegistry } from '../../test-support/registry.js';
import { DEFAULT_MASKED_PATHS } from '../../src/container/oci-spec/masked-paths.js';

const CREATES = 25;

type MountLine = { root: string; mountPoint: string; options: string[]; fstype: string };

/** A process's mount table, as the host reads it from /proc/<pid>/mountinfo. */
function mountTable(pid: number | 'self'): MountLine[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter(Boolean).map((l) => {
    const f = l.split(' ');
    return { root: f[3]!, mountPoint: f[4]!, options: f[5]!.split(','), fstype: f[f.indexOf('-') + 1]! };
  });
}

describe('mount races from a second container of the pod', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let work: string;
  let image: string;
  let podSandboxId: string;
  let sandboxConfig: Record<string, unknown>;
  let hostBefore: string[];
  const coreBefore = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
  const racers: { id: string; dir: string }[] = [];

  /** The host's mounts on /proc, /sys, /dev and under our work dir: a mount that escaped a
   * container's mount namespace would show here. */
  const hostMounts = () => mountTable('self').map((m) => m.mountPoint)
    .filter((mp) => /^\/(proc|sys|dev)(\/|$)/.test(mp) || mp.startsWith(work)).sort();

  beforeAll(async () => {
    work = await mkdtemp('/tmp/crib-mount-races-');
    const racerBin = buildPathRacer(work);
    registry = await startRegistry();
    const layer = await busyboxRootfsLayer({
      extra: [{ type: 'file', path: 'bin/path-racer', content: readFileSync(racerBin), mode: 0o755 }],
    });
    await pushImage(registry, 'library/racer', 'latest', buildImage({ layers: [layer], config: { Cmd: ['/bin/sh'] } }));
    image = `${registry.host}/library/racer:latest`;
    d = await startDaemon();
    await d.cri.image.PullImage({ image: { image } });
    sandboxConfig = podConfigFactory('races', join(work, 'logs'))('races');
    ({ podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: sandboxConfig }));
    hostBefore = hostMounts();
  });

  afterAll(async () => {
    for (const r of racers) await writeFile(stopFile(r.dir), '').catch(() => undefined);
    if (d) {
      if (podSandboxId) await d.cri.runtime.RemovePodSandbox({ podSandboxId }).catch(() => undefined);
      await d.cleanup();
    }
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Start the racer container swapping /vol/a and /vol/b, /vol being the host dir `dir`. */
  async function startRacer(name: string, dir: string, a: string, b: string): Promise<{ stop: () => Promise<number> }> {
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId, sandboxConfig,
      config: {
        metadata: { name, attempt: 0 }, image: { image }, command: ['/bin/path-racer', '/vol', a, b],
        logPath: `${name}.log`, mounts: [{ containerPath: '/vol', hostPath: dir }],
      },
    });
    await d.cri.runtime.StartContainer({ containerId });
    racers.push({ id: containerId, dir });
    const logPath = join(work, 'logs', 'races', `${name}.log`);
    await waitFor(`${name} racing`, () => existsSync(logPath) && readFileSync(logPath, 'utf8').includes('racing'));
    return {
      stop: async () => {
        await writeFile(stopFile(dir), '');
        const st = await waitFor(`${name} to stop`, async () => {
          const s = (await d.cri.runtime.ContainerStatus({ containerId })).status;
          return s.state === 'CONTAINER_EXITED' ? s : undefined;
        });
        expect(st.exitCode).toBe(0);
        await d.cri.runtime.RemoveContainer({ containerId });
        return Number(/swaps (\d+)/.exec(readFileSync(logPath, 'utf8'))?.[1] ?? 0);
      },
    };
  }

  interface Tally { ok: number; sawLink: number; refused: number; landed: string[]; errors: string[] }

  /**
   * CREATES times: create and start a container with `mounts`, give its init's pid to judge()
   * (which returns what went wrong, or '' — and 'link' when it went right but met the racer's
   * link), remove it. A failed create or start (the runtime's create, where the mounts are made,
   * is the start's) must match `refusal`; one refused at start is removed too.
   */
  async function createMany(name: string, mounts: object[], refusal: RegExp | undefined, judge: (pid: number) => string): Promise<Tally> {
    const t: Tally = { ok: 0, sawLink: 0, refused: 0, landed: [], errors: [] };
    for (let i = 0; i < CREATES; i++) {
      let containerId: string | undefined;
      try {
        ({ containerId } = await d.cri.runtime.CreateContainer({
          podSandboxId, sandboxConfig,
          // Runs until removed: its mount table is inspected while it runs.
          config: { metadata: { name, attempt: i }, image: { image }, command: ['/bin/sleep', '1000'], logPath: `${name}-${i}.log`, mounts },
        }));
        await d.cri.runtime.StartContainer({ containerId });
      } catch (err) {
        const msg = (err as Error).message;
        if (refusal?.test(msg)) t.refused++;
        else t.errors.push(msg);
        if (containerId) await d.cri.runtime.RemoveContainer({ containerId });
        continue;
      }
      const { info } = await d.cri.runtime.ContainerStatus({ containerId, verbose: true });
      const verdict = judge(JSON.parse(info.info!).pid);
      if (verdict === '') t.ok++;
      else if (verdict === 'link') { t.ok++; t.sawLink++; } else t.landed.push(verdict);
      await d.cri.runtime.RemoveContainer({ containerId });
    }
    return t;
  }

  // CVE-2021-30465 class: a read-only volume mounted inside a shared one. The racer swaps its
  // mount point /vol/sub with a link to /vol; a runtime that mounts and then applies `ro` by
  // looking the path up again makes /vol read-only instead and leaves the volume writable.
  it('a read-only volume stays read-only wherever the racer sends its mount', async () => {
    const shared = join(work, 'shared');
    await mkdir(join(shared, 'sub'), { recursive: true });
    await symlink('/vol', join(shared, 'sub-link'));
    const ro = join(work, `ro-volume-${process.pid}`);
    await mkdir(ro);
    await writeFile(join(ro, 'keep'), 'keep\n');
    const racer = await startRacer('racer-ro', shared, 'sub', 'sub-link');
    const t = await createMany('victim-ro', [
      { containerPath: '/vol', hostPath: shared },
      { containerPath: '/vol/sub', hostPath: ro, readonly: true },
    ], undefined, (pid) => {
      const mine = mountTable(pid).filter((m) => m.root.endsWith(`/${basename(ro)}`));
      if (mine.length !== 1) return `${mine.length} mounts of the volume`;
      if (!mine[0]!.options.includes('ro')) return `read-write at ${mine[0]!.mountPoint}`;
      return mine[0]!.mountPoint === '/vol/sub' ? '' : 'link';
    });
    const swaps = await racer.stop();
    console.log(`read-only volume race: ${JSON.stringify({ ...t, swaps })}`);
    expect(t.errors).toEqual([]);
    expect(t.landed).toEqual([]);
    expect(t.ok).toBe(CREATES);
    expect(t.sawLink).toBeGreaterThan(0);
    expect(await readFile(join(ro, 'keep'), 'utf8')).toBe('keep\n');
  });

  // CVE-2025-31133 class: the container's /dev is a shared volume, and the racer swaps its
  // `null` (a real null device) with a link to /proc/sys/kernel/core_pattern. Masking
  // /proc/keys and friends with "/dev/null" by path would bind the host's core_pattern there,
  // writable by the container.
  it('masked paths are covered with a real null device, never with what /dev/null links to', async () => {
    const dev = join(work, 'dev-volume');
    await mkdir(dev);
    execFileSync('mknod', ['-m', '666', join(dev, 'null'), 'c', '1', '3']);
    await symlink('/proc/sys/kernel/core_pattern', join(dev, 'null-link'));
    const racer = await startRacer('racer-null', dev, 'null', 'null-link');
    const t = await createMany('victim-null', [{ containerPath: '/dev', hostPath: dev }],
      /maskedPaths `\/proc\/\S+`: \/dev\/null in the container is a symlink, not the null device \(character 1:3\)/,
      (pid) => {
        const wrong: string[] = [];
        for (const p of DEFAULT_MASKED_PATHS) {
          const path = `/proc/${pid}/root${p}`;
          if (!existsSync(path) || lstatSync(path).isDirectory()) continue;
          const st = statSync(path);
          if (!st.isCharacterDevice() || st.rdev !== 0x103) wrong.push(p);
        }
        if (mountTable(pid).some((m) => m.fstype === 'proc' && m.root === '/sys/kernel/core_pattern')) wrong.push('core_pattern bound');
        return wrong.join(', ');
      });
    const swaps = await racer.stop();
    console.log(`masked paths race: ${JSON.stringify({ ...t, swaps })}`);
    expect(t.errors).toEqual([]);
    expect(t.landed).toEqual([]);
    // Both ends were met: creates that found the link were refused, the others masked.
    expect(t.refused).toBeGreaterThan(0);
    expect(t.ok).toBeGreaterThan(0);
  });

  it('nothing reached the host, and the daemon still serves', async () => {
    expect(hostMounts()).toEqual(hostBefore);
    expect(readFileSync('/proc/sys/kernel/core_pattern', 'utf8')).toBe(coreBefore);
    expect((await d.cri.runtime.Version({})).runtimeName).toBe('crib');
    expect((await d.cri.runtime.PodSandboxStatus({ podSandboxId })).status.state).toBe('SANDBOX_READY');
    expect((await d.cri.runtime.ListContainers({ filter: { podSandboxId } })).containers).toEqual([]);
  });
});
