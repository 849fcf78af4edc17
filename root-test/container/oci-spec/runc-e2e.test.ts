// End to end: the spec buildContainerSpec writes must be accepted and honoured by a real OCI
// runtime (Debian's runc). A busybox-static rootfs in a temp dir; each container prints what
// the kernel applied (id, /proc/self/status, mounts, cgroup files) and the test reads it back.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_CAPABILITIES } from '../../../src/container/oci-spec/capabilities.js';
import { type ContainerSpecInput, buildContainerSpec, readNodeFacts } from '../../../src/container/oci-spec/container-spec.js';
import { containerConfig, imageConfig, mount, namespaceOptions, privilegedSandboxConfig, resources, sandboxConfig } from '../../../src/container/oci-spec/test-fixtures.js';

const RUNC = '/usr/sbin/runc';
const DEFAULT_CAPEFF = '00000000a80425fb';
let base = '';
let rootfs = '';
let runcRoot = '';
const cgroupParent = `/crib-spec-e2e-${process.pid}`;
const netnsName = `crib-spec-e2e-${process.pid}`;
let netnsCreated = false;
let submounted = false;
const started: string[] = [];

function run(cmd: string, args: string[], timeoutMs = 45_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), `crib-spec-e2e-${process.pid}-`));
  rootfs = join(base, 'rootfs');
  runcRoot = join(base, 'runc-state');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'data']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
  for (const applet of applets) symlinkSync('busybox', join(rootfs, 'bin', applet));
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\napp:x:1000:\nstaff:x:50:app\n');
  writeFileSync(join(base, 'hosts'), '127.0.0.1 localhost\n10.0.0.5 web-0\n');
  writeFileSync(join(base, 'resolv.conf'), 'nameserver 10.96.0.10\n');
  writeFileSync(join(base, 'hostname'), 'web-0\n');
  mkdirSync(join(base, 'volume'));
  writeFileSync(join(base, 'volume', 'file'), 'from-the-host\n');
  // A submount inside the volume: only a recursive read-only mount makes it read-only too.
  mkdirSync(join(base, 'volume', 'sub'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', join(base, 'volume', 'sub')]);
  submounted = true;
  execFileSync('ip', ['netns', 'add', netnsName]);
  netnsCreated = true;
});

afterAll(async () => {
  for (const id of started) await run(RUNC, ['--root', runcRoot, 'delete', '--force', id]);
  // runc removes each container cgroup; the parent it created under each controller is ours.
  for (const ctrl of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
    const dir = join('/sys/fs/cgroup', ctrl, cgroupParent);
    try {
      if (existsSync(dir)) rmdirSync(dir);
    } catch {
      // not a directory we created or already gone
    }
  }
  if (netnsCreated) await run('ip', ['netns', 'delete', netnsName]);
  if (submounted) await run('umount', ['-l', join(base, 'volume', 'sub')]);
  rmSync(base, { recursive: true, force: true });
});

function specInput(name: string, script: string, sc: Parameters<typeof containerConfig>[1], o: Partial<ContainerSpecInput> = {}, cfg: Parameters<typeof containerConfig>[0] = {}): ContainerSpecInput {
  return {
    id: `crib-spec-e2e-${process.pid}-${name}`,
    config: containerConfig({ command: ['/bin/sh', '-c'], args: [script], ...cfg }, sc),
    sandbox: {
      id: `pod-${process.pid}`,
      config: sandboxConfig(),
      hostname: 'web-0',
      hostsPath: join(base, 'hosts'),
      resolvPath: join(base, 'resolv.conf'),
      hostnamePath: join(base, 'hostname'),
      cgroupParent,
    },
    image: { config: imageConfig({}), ref: 'sha256:test' },
    rootfsPath: rootfs,
    rootfsLayers: [rootfs],
    cgroupVersion: 1,
    ...o,
  };
}

async function runContainer(input: ContainerSpecInput): Promise<string> {
  const bundle = join(base, `bundle-${input.id}`);
  mkdirSync(bundle);
  const spec = await buildContainerSpec(input, readNodeFacts(1));
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  started.push(input.id);
  const res = await run(RUNC, ['--root', runcRoot, 'run', '--bundle', bundle, input.id]);
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
  return res.stdout;
}

const field = (out: string, name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(out)?.[1] ?? '';
const line = (out: string, key: string): string => new RegExp(`^${key}=(.*)$`, 'm').exec(out)?.[1] ?? '';
const ownNamespaces = namespaceOptions({ network: 'CONTAINER', ipc: 'CONTAINER', pid: 'CONTAINER' });
const runtimeDefault = { profileType: 'RuntimeDefault' as const, localhostRef: '' };

describe('runc accepts and applies the generated spec', () => {
  it('runs as root with the default capabilities, seccomp filter and pod files', async () => {
    const out = await runContainer(
      specInput('root', 'id; echo host=$(hostname); cat /etc/hosts; cat /proc/self/status; unshare -n true 2>/dev/null; echo unshare=$?', {
        namespaceOptions: ownNamespaces,
        seccomp: runtimeDefault,
      }),
    );
    expect(out).toMatch(/^uid=0\(root\) gid=0\(root\)/m);
    expect(line(out, 'host')).toBe('web-0');
    expect(out).toContain('10.0.0.5 web-0');
    expect(field(out, 'CapEff')).toBe(DEFAULT_CAPEFF);
    expect(field(out, 'CapBnd')).toBe(DEFAULT_CAPEFF);
    expect(field(out, 'Seccomp')).toBe('2');
    expect(field(out, 'NoNewPrivs')).toBe('0');
    // unshare(CLONE_NEWNET) is outside the RuntimeDefault allow list.
    expect(line(out, 'unshare')).not.toBe('0');
  });

  it('runs the image USER by name with its groups and no effective capabilities', async () => {
    const out = await runContainer(
      specInput('app', 'id; cat /proc/self/status', { namespaceOptions: ownNamespaces }, { image: { config: imageConfig({ User: 'app' }), ref: 'sha256:test' } }),
    );
    expect(out).toMatch(/^uid=1000\(app\) gid=1000\(app\) groups=50\(staff\),1000\(app\)/m);
    expect(field(out, 'CapEff')).toBe('0000000000000000');
    expect(field(out, 'CapPrm')).toBe('0000000000000000');
    expect(field(out, 'CapBnd')).toBe(DEFAULT_CAPEFF);
    expect(field(out, 'Groups').trim()).toBe('50 1000');
    expect(field(out, 'Seccomp')).toBe('0');
  });

  it('joins a pod network namespace by path and applies mounts, devices, resources and hardening', async () => {
    const script = [
      'cat /proc/self/status',
      'echo netns=$(stat -L -c %i /proc/self/ns/net)',
      'echo oom=$(cat /proc/self/oom_score_adj)',
      'echo data=$(cat /data/file)',
      'touch /data/new 2>/dev/null; echo datawrite=$?',
      'touch /data/sub/new 2>/dev/null; echo subwrite=$?',
      'touch /rootfs-write 2>/dev/null; echo rootwrite=$?',
      'echo zero=$(head -c 3 /dev/zero2 | od -An -tx1 | tr -d " ")',
      'echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)',
      'echo shares=$(cat /sys/fs/cgroup/cpu,cpuacct/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.shares)',
      'echo firmware=$(ls /sys/firmware | wc -l)',
      'echo sysrq=$(echo h 2>/dev/null > /proc/sysrq-trigger; echo $?)',
    ].join('; ');
    const input = specInput(
      'features',
      script,
      {
        namespaceOptions: namespaceOptions({ network: 'POD', ipc: 'CONTAINER', pid: 'CONTAINER' }),
        readonlyRootfs: true,
        noNewPrivs: true,
        runAsUser: { value: '1000' },
        capabilities: { addCapabilities: [], dropCapabilities: [], addAmbientCapabilities: ['NET_BIND_SERVICE'] },
        seccomp: runtimeDefault,
      },
      {},
      {
        mounts: [mount({ containerPath: '/data', hostPath: join(base, 'volume'), readonly: true, recursiveReadOnly: true })],
        devices: [{ hostPath: '/dev/zero', containerPath: '/dev/zero2', permissions: 'rw' }],
      },
    );
    input.runtimeFeatures = { recursiveReadOnly: true };
    input.sandbox.netnsPath = `/run/netns/${netnsName}`;
    input.config.linux!.resources = resources({ memoryLimitInBytes: String(64 * 1024 * 1024), cpuShares: '512', oomScoreAdj: '500' });
    const out = await runContainer(input);
    expect(line(out, 'netns')).toBe(String(statSync(`/run/netns/${netnsName}`).ino));
    expect(field(out, 'NoNewPrivs')).toBe('1');
    expect(field(out, 'Uid').split(/\s+/)[0]).toBe('1000');
    // NET_BIND_SERVICE (bit 10) survives execve for uid 1000 only as an ambient capability.
    expect(field(out, 'CapAmb')).toBe('0000000000000400');
    expect(field(out, 'CapEff')).toBe('0000000000000400');
    expect(field(out, 'Seccomp')).toBe('2');
    expect(line(out, 'oom')).toBe('500');
    expect(line(out, 'data')).toBe('from-the-host');
    expect(line(out, 'datawrite')).not.toBe('0');
    expect(line(out, 'subwrite')).not.toBe('0');
    expect(line(out, 'rootwrite')).not.toBe('0');
    expect(line(out, 'zero')).toBe('000000');
    expect(line(out, 'mem')).toBe(String(64 * 1024 * 1024));
    expect(line(out, 'shares')).toBe('512');
    // Masked: the node has entries there, the container sees an empty read-only tmpfs.
    expect(readdirSync('/sys/firmware').length).toBeGreaterThan(0);
    expect(line(out, 'firmware')).toBe('0');
    expect(line(out, 'sysrq')).not.toBe('0');
  });

  it('runs a privileged container with every daemon capability and no seccomp', async () => {
    const input = specInput('priv', 'cat /proc/self/status; echo devs=$(ls /dev | wc -l)', {
      privileged: true,
      namespaceOptions: ownNamespaces,
      seccomp: runtimeDefault,
    });
    input.sandbox.config = privilegedSandboxConfig();
    const out = await runContainer(input);
    const held = readNodeFacts(1).hostCapabilities.reduce((m, c) => m | (1n << BigInt(ALL_CAPABILITIES.indexOf(c as never))), 0n);
    expect(BigInt(`0x${field(out, 'CapEff')}`)).toBe(held);
    expect(field(out, 'Seccomp')).toBe('0');
    expect(Number(line(out, 'devs'))).toBeGreaterThan(10);
  });
});
