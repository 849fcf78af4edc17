// kubectl debug --target (PID namespace mode TARGET), ContainerStatus.stop_signal (KEP-4960)
// and ImageSpec.runtime_handler end to end.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { buildImage, busyboxRootfsLayer, pushBusybox, pushImage } from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

describe('PID namespace TARGET, stop_signal, image runtime_handler', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let dir: string;
  let image: string;
  let quitImage: string;
  let podConfig: ReturnType<typeof podConfigFactory>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-gaps-'));
    podConfig = podConfigFactory('gaps', join(dir, 'logs'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    // An image whose STOPSIGNAL is SIGQUIT.
    const built = buildImage({ layers: [await busyboxRootfsLayer()], config: { Cmd: ['sh'], StopSignal: 'SIGQUIT' } });
    await pushImage(registry, 'library/quitter', 'v1', built);
    quitImage = `${registry.host}/library/quitter:v1`;
    d = await startDaemon({ toml: '[runtime.handlers.runc]\npath = "/usr/sbin/runc"\n' });
    await d.cri.image.PullImage({ image: { image } });
    await d.cri.image.PullImage({ image: { image: quitImage } });
  });
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const container = (name: string, script: string, extra: Record<string, unknown> = {}) => ({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['/bin/sh', '-c', script],
    ...extra,
  });
  const pidOpts = (pid: string, targetId = '') => ({ linux: { securityContext: { namespaceOptions: { network: 'POD', ipc: 'POD', pid, targetId } } } });

  // Through runc as well: the namespace is handed over as /proc/<daemon pid>/fd/<n>, a descriptor
  // the daemon holds (src/container/target-pidns.ts), which any OCI runtime opens like a path.
  it.each([['crib-runtime', ''], ['runc', 'runc']])('a TARGET container shares the PID namespace of the container it targets (kubectl debug --target), %s', async (_, runtimeHandler) => {
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig(`debugged-${runtimeHandler || 'crib'}`), runtimeHandler });
    const app = (await d.cri.runtime.CreateContainer({ podSandboxId, config: container('app', 'exec sleep 4242') })).containerId;
    await d.cri.runtime.StartContainer({ containerId: app });
    const debug = (await d.cri.runtime.CreateContainer({ podSandboxId, config: container('debugger', 'exec sleep 1000', pidOpts('TARGET', app)) })).containerId;
    await d.cri.runtime.StartContainer({ containerId: debug });

    // The debugger sees the target's process as pid 1, and its own beside it.
    const ps = await d.cri.runtime.ExecSync({ containerId: debug, cmd: ['/bin/sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; ls /proc | grep -c "^[0-9]"'], timeout: '10' });
    const [cmdline, count] = ps.stdout.toString().split('\n');
    expect(cmdline!.trim()).toBe('sleep 4242');
    expect(Number(count)).toBeGreaterThanOrEqual(3); // sleep 4242, sleep 1000, the exec'd shell
    // The target itself does not see into a namespace of the debugger's own.
    const own = await d.cri.runtime.ExecSync({ containerId: app, cmd: ['/bin/sh', '-c', 'cat /proc/*/cmdline | tr "\\0" " "'], timeout: '10' });
    expect(own.stdout.toString()).toContain('sleep 1000');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('refuses TARGET: NOT_FOUND when the target is missing, in another pod or not running; INVALID_ARGUMENT for a restore', async () => {
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('targets') });
    const other = (await d.cri.runtime.RunPodSandbox({ config: podConfig('other') })).podSandboxId;
    const created = (await d.cri.runtime.CreateContainer({ podSandboxId, config: container('created', 'exec sleep 1000') })).containerId;
    const elsewhere = (await d.cri.runtime.CreateContainer({ podSandboxId: other, config: container('elsewhere', 'exec sleep 1000') })).containerId;
    await d.cri.runtime.StartContainer({ containerId: elsewhere });
    const cases: [string, RegExp][] = [
      ['f'.repeat(64), /container f{64} not found in pod/],
      [elsewhere, /not found in pod/],
      [created, /is not running, so it has no PID namespace to join/],
    ];
    for (const [targetId, msg] of cases) {
      const p = d.cri.runtime.CreateContainer({ podSandboxId, config: container(`dbg-${targetId.slice(0, 6)}`, 'true', pidOpts('TARGET', targetId)) });
      await expect(p).rejects.toMatchObject({ code: status.NOT_FOUND });
      await expect(p).rejects.toThrow(msg);
    }
    // A checkpoint archive as the image (restore) cannot join a TARGET namespace: refused, not dropped.
    const archive = join(dir, 'checkpoint.tar');
    await writeFile(archive, 'not read: the combination is refused first');
    const app = (await d.cri.runtime.CreateContainer({ podSandboxId, config: container('app', 'exec sleep 1000') })).containerId;
    await d.cri.runtime.StartContainer({ containerId: app });
    const restored = d.cri.runtime.CreateContainer({ podSandboxId, config: { ...container('restored', 'true', pidOpts('TARGET', app)), image: { image: archive } } });
    await expect(restored).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(restored).rejects.toThrow(/namespaceOptions.pid TARGET cannot be used with a checkpoint archive as the image/);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId: other });
  });

  it('reports the stop signal it uses: the CRI one, else the image STOPSIGNAL, else SIGTERM', async () => {
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('signals') });
    const signalOf = async (config: Record<string, unknown>) => {
      const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config });
      return { containerId, signal: (await d.cri.runtime.ContainerStatus({ containerId })).status.stopSignal as string };
    };
    expect((await signalOf(container('plain', 'true'))).signal).toBe('SIGTERM');
    expect((await signalOf({ ...container('image', 'true'), image: { image: quitImage } })).signal).toBe('SIGQUIT');
    // A real-time signal, which only the number makes reach the process: the trap sees it.
    const rt = await signalOf({
      ...container('cri', 'trap "echo got-rt; exit 0" 36; while :; do sleep 0.1; done', { stopSignal: 'SIGRTMINPLUS2' }),
      image: { image: quitImage },
    });
    expect(rt.signal).toBe('SIGRTMINPLUS2');
    await d.cri.runtime.StartContainer({ containerId: rt.containerId });
    await new Promise((r) => setTimeout(r, 300)); // let the shell install its trap
    await d.cri.runtime.StopContainer({ containerId: rt.containerId, timeout: '10' });
    const st = await waitFor('exit', async () => {
      const s = (await d.cri.runtime.ContainerStatus({ containerId: rt.containerId })).status;
      return s.state === 'CONTAINER_EXITED' ? s : undefined;
    });
    expect(st.exitCode).toBe(0);
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });

  it('keeps and reports ImageSpec.runtime_handler; an unknown handler is refused', async () => {
    await d.cri.image.PullImage({ image: { image, runtimeHandler: 'runc' } });
    const st = await d.cri.image.ImageStatus({ image: { image, runtimeHandler: 'runc' } });
    expect(st.image.spec).toMatchObject({ image: st.image.id, runtimeHandler: 'runc' });
    expect((await d.cri.image.ImageStatus({ image: { image } })).image.spec.runtimeHandler).toBe('');
    const listed = (await d.cri.image.ListImages({ filter: { image: { image: '', runtimeHandler: 'runc' } } })).images;
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((i: { spec: { runtimeHandler: string } }) => i.spec.runtimeHandler === 'runc')).toBe(true);
    for (const call of [
      () => d.cri.image.PullImage({ image: { image, runtimeHandler: 'no-such-handler' } }),
      () => d.cri.image.ImageStatus({ image: { image, runtimeHandler: 'no-such-handler' } }),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/runtimeHandler "no-such-handler" is not configured/) });
    }
    // A container's status says which handler its image was asked for.
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: podConfig('rc'), runtimeHandler: 'runc' });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: { ...container('rc', 'true'), image: { image, runtimeHandler: 'runc' } } });
    expect((await d.cri.runtime.ContainerStatus({ containerId })).status.image.runtimeHandler).toBe('runc');
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
  });
});
