// CDI devices end to end: a vendor spec (CDI's JSON) exposing /dev/null's device under another
// path, with an env var, a mount and a createRuntime hook, asked for through CreateContainer's
// CDI_devices and through a cdi.k8s.io/ annotation; a broken sibling spec that must not get in
// the way; an unknown device refused with NOT_FOUND naming it and the broken file; and a spec
// written while the daemon runs, picked up at the next CreateContainer.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from '../test-support/daemon.js';
import { podConfigFactory } from '../test-support/cri-configs.js';
import { pushBusybox } from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

describe('CDI devices', () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let dir: string;
  let etcCdi: string;
  let runCdi: string;
  let image: string;
  let podSandboxId: string;
  const podConfig = () => podConfigFactory('cdi', join(dir, 'logs'))('cdi-pod');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-cdi-e2e-'));
    etcCdi = join(dir, 'etc-cdi');
    runCdi = join(dir, 'run-cdi');
    await mkdir(etcCdi, { mode: 0o755 });
    await mkdir(runCdi, { mode: 0o755 });
    await writeFile(join(dir, 'vendor-info'), 'vendor library v1\n');
    await writeFile(join(etcCdi, 'vendor.json'), JSON.stringify({
      cdiVersion: '0.6.0',
      kind: 'crib-test.example/nulldev',
      devices: [
        { name: 'dev0', containerEdits: { deviceNodes: [{ path: '/dev/vendor-null', hostPath: '/dev/null', permissions: 'rw' }], env: ['VENDOR_DEV=dev0'] } },
        { name: 'dev1', containerEdits: { env: ['VENDOR_DEV=dev1'] } },
      ],
      containerEdits: {
        env: ['VENDOR_LIB=/opt/vendor'],
        mounts: [{ hostPath: join(dir, 'vendor-info'), containerPath: '/opt/vendor/info', options: ['ro', 'nosuid', 'nodev'] }],
        hooks: [{ hookName: 'createRuntime', path: '/bin/sh', args: ['sh', '-c', `cat > ${join(dir, 'hook-state.json')}`], timeout: 10 }],
      },
    }), { mode: 0o644 });
    // A sibling a vendor tool left half-written: logged, never in the way of the good spec.
    await writeFile(join(runCdi, 'broken.yaml'), 'cdiVersion: "0.6.0"\nkind: crib-test.example/broken\ndevices: [\n', { mode: 0o644 });
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    d = await startDaemon({ toml: `[cdi]\nspec_dirs = ${JSON.stringify([etcCdi, runCdi])}\n` });
    await d.cri.image.PullImage({ image: { image } });
    podSandboxId = (await d.cri.runtime.RunPodSandbox({ config: podConfig() })).podSandboxId;
  });
  afterAll(async () => {
    await d?.cleanup();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const container = (name: string, extra: Record<string, unknown> = {}) => ({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['/bin/sh', '-c', 'exec sleep 1000'],
    ...extra,
  });
  const exec = async (containerId: string, script: string) => {
    const r = await d.cri.runtime.ExecSync({ containerId, cmd: ['/bin/sh', '-c', script], timeout: '10' });
    return { code: r.exitCode as number, out: r.stdout.toString() as string, err: r.stderr.toString() as string };
  };

  it('gives a container the device node, env, mount and hook a CDI spec describes', async () => {
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId,
      config: container('gpu', { CDIDevices: [{ name: 'crib-test.example/nulldev=dev0' }] }),
    });
    // The runtime's create, and so its createRuntime hook, is StartContainer's.
    expect(existsSync(join(dir, 'hook-state.json'))).toBe(false);
    await d.cri.runtime.StartContainer({ containerId });
    // The createRuntime hook ran on the host with the container's state on stdin.
    expect(JSON.parse(readFileSync(join(dir, 'hook-state.json'), 'utf8'))).toMatchObject({ id: containerId });

    const node = await exec(containerId, 'ls -l /dev/vendor-null');
    expect(node.out).toMatch(/^crw-rw-rw-\s.*\s1,\s+3\s.*\/dev\/vendor-null$/m);
    // The devices cgroup lets it be written ('rw'), as /dev/null would be.
    expect(await exec(containerId, 'echo through > /dev/vendor-null && echo written')).toMatchObject({ code: 0, out: 'written\n' });
    expect((await exec(containerId, 'echo "$VENDOR_DEV $VENDOR_LIB"')).out).toBe('dev0 /opt/vendor\n');
    expect((await exec(containerId, 'cat /opt/vendor/info')).out).toBe('vendor library v1\n');
    const ro = await exec(containerId, 'echo x > /opt/vendor/info');
    expect(ro.code).not.toBe(0);
    expect(ro.err).toMatch(/Read-only file system/);
    await d.cri.runtime.RemoveContainer({ containerId });
  });

  it('resolves names given in cdi.k8s.io/ annotations too', async () => {
    const { containerId } = await d.cri.runtime.CreateContainer({
      podSandboxId,
      config: container('annotated', { annotations: { 'cdi.k8s.io/test-plugin': 'crib-test.example/nulldev=dev1' } }),
    });
    await d.cri.runtime.StartContainer({ containerId });
    expect((await exec(containerId, 'echo "$VENDOR_DEV $VENDOR_LIB"; test -e /dev/vendor-null || echo no-node')).out).toBe('dev1 /opt/vendor\nno-node\n');
    await d.cri.runtime.RemoveContainer({ containerId });
  });

  it('refuses an unknown device with NOT_FOUND naming it and the broken spec, leaving nothing behind', async () => {
    const before = (await d.cri.runtime.ListContainers({})).containers.length;
    const create = d.cri.runtime.CreateContainer({ podSandboxId, config: container('missing', { CDIDevices: [{ name: 'crib-test.example/nulldev=dev9' }] }) });
    await expect(create).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(create).rejects.toThrow(/CDI device "crib-test.example\/nulldev=dev9" is not defined by any spec.*broken\.yaml \(not valid YAML/);
    await expect(d.cri.runtime.CreateContainer({ podSandboxId, config: container('malformed', { CDIDevices: [{ name: 'not-a-cdi-name' }] }) }))
      .rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    expect((await d.cri.runtime.ListContainers({})).containers.length).toBe(before);
    expect(d.output()).toMatch(/broken\.yaml.*CDI spec file ignored/);
  });

  it('picks up a spec written while the daemon runs, the later directory overriding the earlier', async () => {
    await writeFile(join(runCdi, 'override.yaml'), [
      'cdiVersion: "0.3.0"',
      'kind: crib-test.example/nulldev',
      'devices:',
      '  - name: dev1',
      '    containerEdits:',
      '      env: [VENDOR_DEV=from-run]',
    ].join('\n'), { mode: 0o644 });
    const { containerId } = await d.cri.runtime.CreateContainer({ podSandboxId, config: container('later', { CDIDevices: [{ name: 'crib-test.example/nulldev=dev1' }] }) });
    await d.cri.runtime.StartContainer({ containerId });
    // The overriding spec has no spec-level edits: VENDOR_LIB is not set.
    expect((await exec(containerId, 'echo "$VENDOR_DEV/${VENDOR_LIB:-unset}"')).out).toBe('from-run/unset\n');
    await d.cri.runtime.RemoveContainer({ containerId });
    expect(existsSync(join(runCdi, 'override.yaml'))).toBe(true);
  });
});
