// AppArmor through the CRI on the host tier. This host runs no AppArmor (the guest tier,
// test-guest/cgroup2/apparmor.test.ts, tests the enabled paths), so crib must follow containerd:
// an explicit Localhost profile is refused — the pod asked for a confinement the node cannot
// give, and running it unconfined would be a silent downgrade — while RuntimeDefault and
// Unconfined run with no profile. On a host that does run AppArmor, the same unloaded
// Localhost profile must be refused as not loaded.
import { status } from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apparmorEnabled, selinuxEnabled } from '../../src/container/oci-spec/lsm-host.js';
import { nativeBinaries } from '../../src/native-paths.js';
import { podConfigFactory } from '../../test-support/cri-configs.js';
import { startDaemon, waitFor, type TestDaemon } from '../../test-support/daemon.js';
import { pushBusybox } from '../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../test-support/registry.js';

const MISSING = 'crib-test-profile-that-is-not-loaded';

describe('AppArmor profiles through the CRI', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let logDir: string;
  let image: string;
  let podId: string;
  let podConfig: Record<string, any>;
  const hostHasAppArmor = apparmorEnabled();

  beforeAll(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'crib-apparmor-logs-'));
    registry = await startRegistry();
    await pushBusybox(registry, 'security/apparmor', 'latest');
    image = `${registry.host}/security/apparmor:latest`;
    d = await startDaemon();
    await d.cri.image.PullImage({ image: { image } });
    podConfig = podConfigFactory('apparmor', logDir)('apparmor');
    podId = (await d.cri.runtime.RunPodSandbox({ config: podConfig })).podSandboxId;
  }, 120_000);

  afterAll(async () => {
    if (podId) await d.cri.runtime.RemovePodSandbox({ podSandboxId: podId }).catch(() => undefined);
    await d?.cleanup();
    await registry?.stop();
    await rm(logDir, { recursive: true, force: true });
  });

  const config = (name: string, securityContext: Record<string, unknown>) => ({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['/bin/sh', '-c', 'echo ran'],
    logPath: `${name}.log`,
    linux: { securityContext },
  });

  const create = (name: string, securityContext: Record<string, unknown>) =>
    d.cri.runtime.CreateContainer({ podSandboxId: podId, config: config(name, securityContext), sandboxConfig: podConfig });

  for (const [form, sc] of [
    ['the apparmor SecurityProfile', { apparmor: { profileType: 'Localhost', localhostRef: MISSING } }],
    ['the deprecated apparmor_profile string', { apparmorProfile: `localhost/${MISSING}` }],
  ] as const) {
    it(`refuses an explicit Localhost profile given as ${form}, naming it, and leaves no container`, async () => {
      const before = (await d.cri.runtime.ListContainers({})).containers.length;
      const err = await create(`localhost-${before}`, sc).then(() => undefined, (e: { code: number; details: string }) => e);
      expect(err, 'CreateContainer must fail').toBeDefined();
      expect(err!.details).toContain(`AppArmor profile "${MISSING}"`);
      if (hostHasAppArmor) {
        expect(err!.code).toBe(status.NOT_FOUND);
        expect(err!.details).toMatch(/is not loaded/);
      } else {
        expect(err!.code).toBe(status.FAILED_PRECONDITION);
        expect(err!.details).toMatch(/AppArmor is not enabled on this node/);
      }
      expect((await d.cri.runtime.ListContainers({})).containers).toHaveLength(before);
    });
  }

  it('the runtime\'s features document and verbose Status report AppArmor as this host has it', async () => {
    const features = JSON.parse(execFileSync(nativeBinaries.runtime, ['features'], { encoding: 'utf8' }));
    expect(features.linux.apparmor).toEqual({ enabled: hostHasAppArmor });
    const { info } = await d.cri.runtime.Status({ verbose: true });
    expect(JSON.parse(info.securityModules!)).toEqual({ apparmor: hostHasAppArmor, selinux: selinuxEnabled() });
  });

  it('refuses a malformed profile string with INVALID_ARGUMENT', async () => {
    const err = await create('bad-string', { apparmorProfile: 'docker-default' }).then(() => undefined, (e: { code: number; details: string }) => e);
    expect(err?.code).toBe(status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/apparmorProfile "docker-default" is not/);
  });

  for (const [form, sc] of [
    ['RuntimeDefault', { apparmor: { profileType: 'RuntimeDefault' } }],
    ['Unconfined', { apparmor: { profileType: 'Unconfined' } }],
    ['runtime/default', { apparmorProfile: 'runtime/default' }],
    ['unconfined', { apparmorProfile: 'unconfined' }],
  ] as const) {
    it(`runs a container asking for ${form}`, async () => {
      const { containerId } = await create(`ok-${form.replace(/\W/g, '-')}`.toLowerCase() + (form[0] === 'U' || form[0] === 'R' ? '-profile' : '-string'), sc);
      await d.cri.runtime.StartContainer({ containerId });
      const st = await waitFor('the container to exit', async () => {
        const { status: s } = await d.cri.runtime.ContainerStatus({ containerId });
        return s.state === 'CONTAINER_EXITED' ? s : undefined;
      }, 60_000);
      expect(st.exitCode).toBe(0);
      const { info } = await d.cri.runtime.ContainerStatus({ containerId, verbose: true });
      const spec = JSON.parse(info.info).runtimeSpec;
      // No AppArmor here: no profile reaches the runtime. (With AppArmor, RuntimeDefault is
      // crib-default: the guest tier checks that.)
      if (!hostHasAppArmor) expect(spec.process.apparmorProfile).toBeUndefined();
      else expect(spec.process.apparmorProfile).toBe(form.toLowerCase().includes('default') ? 'crib-default' : undefined);
    });
  }
});
