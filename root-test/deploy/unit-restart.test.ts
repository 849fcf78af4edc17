// The installed daemon, started exactly as deploy/crib.service starts it, and restarted the way
// systemd restarts it with KillMode=process: a signal to the daemon's pid only. A container made
// with the installed `crib` command keeps running across a clean stop and across a crash, the
// restarted daemon finds it running, and it keeps logging throughout. The monitor is the reason:
// it runs the installed crib-monitor, is not the daemon's child, and is in a session and process
// group of its own, so nothing aimed at the daemon (its pid, its group, its session's hangup)
// reaches it; it does share the daemon's cgroup (crib.service's, under systemd), which is why the
// unit must not use the default KillMode. PID 1 here is not systemd, so the test does what
// KillMode=process makes systemd do rather than asking systemd. Everything runs in a temporary
// DESTDIR, with its own root, state, socket, bridge and nftables table. A pod played with the
// installed `crib kube play` keeps its container and supervisor across a daemon crash too.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criClient, type CriClient } from '../../test-support/cri-client.js';
import { removeCgroupParent, removeMountTemplate, removeNetwork, waitFor } from '../../test-support/daemon.js';
import { pushBusybox } from '../../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../../test-support/registry.js';

const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 240_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      if (err && code === -1) reject(err);
      else resolve({ code, stdout, stderr });
    });
  });
}

/** ExecStart= of a unit file, split into words (the unit must use no quoting or specifiers). */
function execStart(unit: string): string[] {
  const lines = unit.split('\n').filter((l) => l.startsWith('ExecStart='));
  expect(lines).toHaveLength(1);
  const cmd = lines[0]!.slice('ExecStart='.length);
  expect(cmd).not.toMatch(/["'%\\$]/);
  return cmd.trim().split(/\s+/);
}

/** pid, ppid, process group and session of a process, from /proc/PID/stat. */
function procStat(pid: number): { ppid: number; pgrp: number; session: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]) };
}

/** Whether a process runs: it exists and is not a zombie waiting for its reaper. */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
};

describe('the installed daemon under crib.service\'s command line', { timeout: 600_000 }, () => {
  let work: string;
  let dest: string;
  let registry: TestRegistry;
  let argv: string[];
  let socket: string;
  let bridge: string;
  let nftTable: string;
  let daemon: { proc: ChildProcess; exited: Promise<number | null>; output: () => string } | undefined;
  let cri: CriClient | undefined;

  const crib = (...args: string[]) => run(join(dest, '/usr/local/bin/crib'), ['--address', `unix://${socket}`, ...args]);

  /** Start the daemon with the unit's command line, every absolute path in it taken inside DESTDIR. */
  async function startUnitDaemon(): Promise<number> {
    const [cmd, ...args] = argv.map((a) => (a.startsWith('/') ? join(dest, a) : a));
    // No CRIB_*_BINARY overrides: the installed daemon must find the installed binaries itself.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CRIB_')));
    const proc = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    daemon = { proc, exited, output: () => out };
    cri = criClient(socket);
    let code: number | null | undefined;
    void exited.then((c) => (code = c));
    await waitFor('the installed daemon', async () => {
      if (code !== undefined) throw new Error(`daemon exited with ${code}:\n${out}`);
      await cri!.runtime.Version({}, { deadline: Date.now() + 1000 });
      return true;
    }, 60_000);
    return proc.pid!;
  }

  /** What systemd does on stop or restart with KillMode=process: signal the main pid, wait. */
  async function stopDaemon(signal: NodeJS.Signals): Promise<void> {
    cri?.close();
    cri = undefined;
    if (daemon && daemon.proc.exitCode === null && daemon.proc.signalCode === null) daemon.proc.kill(signal);
    await daemon?.exited;
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'crib-unit-'));
    dest = join(work, 'dest');
    const installed = await run('bash', [join(CHECKOUT, 'deploy/install.sh')], { DESTDIR: dest });
    if (installed.code !== 0) throw new Error(`install.sh failed:\n${installed.stderr}`);
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');

    argv = execStart(readFileSync(join(dest, '/etc/systemd/system/crib.service'), 'utf8'));
    // The daemon's private root, state, socket and network go in the config file the unit names.
    const configArg = argv[argv.indexOf('--config') + 1]!;
    const configFile = join(dest, configArg);
    expect(readFileSync(configFile, 'utf8')).toBe(readFileSync(join(CHECKOUT, 'deploy/config.toml'), 'utf8'));
    const h = createHash('sha256').update(work).digest('hex');
    bridge = `cribu${h.slice(0, 6)}`;
    nftTable = `cribu${h.slice(0, 6)}`;
    socket = join(work, 'crib.sock');
    await writeFile(configFile,
      `root = "${join(work, 'root')}"\nstate = "${join(work, 'state')}"\nlog_level = "debug"\n[grpc]\naddress = "unix://${socket}"\n` +
      `[network]\nbridge = "${bridge}"\npod_cidr = "10.${200 + (parseInt(h.slice(6, 8), 16) % 50)}.${parseInt(h.slice(8, 10), 16)}.0/24"\nnft_table = "${nftTable}"\n`);
  });

  afterAll(async () => {
    try {
      if (cri) {
        const { items } = await cri.runtime.ListPodSandbox({}, { deadline: Date.now() + 5000 });
        for (const p of items) await cri.runtime.RemovePodSandbox({ podSandboxId: p.id }, { deadline: Date.now() + 30_000 });
      }
    } catch {
      /* best effort: the failure being cleaned up after may have wedged the daemon */
    }
    await stopDaemon('SIGTERM');
    await registry?.stop();
    if (bridge) await removeNetwork(bridge, nftTable);
    await removeCgroupParent('crib');
    await removeMountTemplate(join(work, 'state'));
    await rm(work, { recursive: true, force: true });
  });

  it('runs the unit\'s exact command line: the installed crib command, the daemon verb, the /etc config', () => {
    expect(argv).toEqual(['/usr/local/bin/crib', 'daemon', '--config', '/etc/crib/config.toml']);
    expect(readFileSync(join(dest, '/etc/systemd/system/crib.service'), 'utf8')).toMatch(/^KillMode=process$/m);
  });

  it('keeps a container running across a daemon stop and a daemon crash, with the restarted daemon finding it', async () => {
    const first = await startUnitDaemon();
    const version = await crib('version', '-o', 'json');
    expect(version.code).toBe(0);
    expect(JSON.parse(version.stdout)).toMatchObject({ runtimeName: 'crib' });

    const image = `${registry.host}/library/busybox:latest`;
    expect((await crib('pull', image)).code).toBe(0);
    const logDir = join(work, 'logs');
    await writeFile(join(work, 'pod.yaml'),
      `metadata:\n  name: survivor\n  namespace: deploy\n  uid: uid-survivor-${process.pid}\n  attempt: 0\nlog_directory: ${logDir}\nlinux: {}\n`);
    await writeFile(join(work, 'ctr.yaml'),
      `metadata:\n  name: ticker\n  attempt: 0\nimage:\n  image: ${image}\ncommand: ["/bin/sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"]\nlog_path: ticker.log\n`);
    const runp = await crib('runp', join(work, 'pod.yaml'));
    expect(runp.stderr).toBe('');
    const podId = runp.stdout.trim();
    const create = await crib('create', podId, join(work, 'ctr.yaml'), join(work, 'pod.yaml'));
    expect(create.stderr).toBe('');
    const ctrId = create.stdout.trim();
    expect((await crib('start', ctrId)).code).toBe(0);

    const status = async () => {
      const r = await cri!.runtime.ContainerStatus({ containerId: ctrId, verbose: true });
      const info = JSON.parse(r.info.info) as { pid: number; monitorPid: number };
      return { state: r.status.state as string, pid: info.pid, monitorPid: info.monitorPid };
    };
    const before = await status();
    expect(before.state).toBe('CONTAINER_RUNNING');
    // The monitor is the installed binary, found by the installed package with no override.
    expect(readlinkSync(`/proc/${before.monitorPid}/exe`)).toBe(join(dest, '/usr/local/libexec/crib/crib-monitor'));
    // And it is out of the daemon's reach: not its child, not in its process group or session.
    const daemonStat = procStat(first);
    const monitorStat = procStat(before.monitorPid);
    expect(monitorStat.ppid).not.toBe(first);
    expect(monitorStat.pgrp).not.toBe(daemonStat.pgrp);
    expect(monitorStat.session).not.toBe(daemonStat.session);
    // But it shares the daemon's cgroup: under systemd that is crib.service's, which the default
    // KillMode=control-group would empty on every stop. Hence KillMode=process in the unit.
    expect(readFileSync(`/proc/${before.monitorPid}/cgroup`, 'utf8')).toBe(readFileSync(`/proc/${first}/cgroup`, 'utf8'));

    const logPath = join(logDir, 'ticker.log');
    const ticks = () => readFileSync(logPath, 'utf8').split('\n').filter((l) => l.includes('tick')).length;
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      // systemctl restart (SIGTERM), then a crash that Restart=always recovers from (SIGKILL).
      await stopDaemon(signal);
      expect(alive(before.monitorPid) && alive(before.pid)).toBe(true);
      const whileDown = ticks();
      await waitFor('the container to log while the daemon is down', () => ticks() > whileDown + 3, 20_000);
      const pid = await startUnitDaemon();
      expect(pid).not.toBe(first);
      const after = await status();
      expect(after).toEqual({ state: 'CONTAINER_RUNNING', pid: before.pid, monitorPid: before.monitorPid });
      const ps = await crib('ps', '-o', 'json');
      expect((JSON.parse(ps.stdout) as { containers: { id: string; state: string }[] }).containers)
        .toContainEqual(expect.objectContaining({ id: ctrId, state: 'CONTAINER_RUNNING' }));
      // The restarted daemon still reaches the container through its monitor.
      const exec = await crib('exec', ctrId, 'echo', 'still-here');
      expect(exec.stdout.trim()).toBe('still-here');
    }

    // The daemon that went down cleanly said so; neither restart left a second daemon behind.
    expect(daemon!.proc.pid).not.toBe(first);
    expect(existsSync(`/proc/${first}`)).toBe(false);
    expect((await crib('rmp', '-f', podId)).code).toBe(0);
    // A monitor outlives its container briefly (it records the exit); a zombie is gone too.
    await waitFor('the container and its monitor to be gone', () => !alive(before.pid) && !alive(before.monitorPid), 20_000);
  });

  it('keeps a pod played with the installed `crib kube play` running across a daemon crash', async () => {
    if (!cri) await startUnitDaemon();
    const image = `${registry.host}/library/busybox:latest`;
    const stateDir = join(work, 'kube');
    const kube = (verb: string, ...rest: string[]) => crib('kube', verb, ...rest, '--state-dir', stateDir);
    const manifest = join(work, 'played.yaml');
    await writeFile(manifest, `apiVersion: v1
kind: Pod
metadata: {name: played, namespace: deploy}
spec:
` +
      `  containers:
    - {name: app, image: ${image}, imagePullPolicy: IfNotPresent, command: [sleep, '100000']}
`);
    const play = await kube('play', manifest, '--pod-log-dir', join(work, 'pod-logs'), '--wait', '--timeout', '2m');
    expect(play.stderr).toBe('');
    expect(play.code).toBe(0);
    const psItem = async () => {
      const r = await kube('ps', '-o', 'json');
      return (JSON.parse(r.stdout) as { items: { name: string; ready: string; status: string; restarts: number; pod: { containers: { id?: string }[] } }[] })
        .items.find((p) => p.name === 'played');
    };
    const before = await psItem();
    expect(before).toMatchObject({ ready: '1/1', status: 'Running', restarts: 0 });
    const containerId = before!.pod.containers[0]!.id!;

    await stopDaemon('SIGKILL');
    await startUnitDaemon();
    // The same container, never restarted: the supervisor rode out the daemon's absence.
    expect((await cri!.runtime.ContainerStatus({ containerId })).status.state).toBe('CONTAINER_RUNNING');
    const after = await waitFor('the played pod to be seen again', async () => {
      const p = await psItem();
      return p?.status === 'Running' && p.ready === '1/1' ? p : undefined;
    }, 30_000);
    expect(after.restarts).toBe(0);
    expect(after.pod.containers[0]!.id).toBe(containerId);

    const down = await kube('down', manifest);
    expect(down.code).toBe(0);
    expect((await cri!.runtime.ListPodSandbox({ filter: { labelSelector: { 'io.kubernetes.pod.name': 'played' } } })).items).toEqual([]);
    expect(await psItem()).toBeUndefined();
  });
});
