// Runs the real crib-pinns against the real kernel (root). Every pin dir lives in a temp dir that
// afterAll unpins and removes, so a failing test leaves no mounts or namespaces behind.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlreadyExistsError, InternalError, InvalidArgumentError } from '../../src/errors.js';
import { nativeBinaries } from '../../src/native-paths.js';
import {
  isPodInit,
  pinPodNamespaces,
  podInitPidNamespace,
  startPodInit,
  stopPodInit,
  unpinPodNamespaces,
} from '../../src/sandbox/namespaces.js';

let base = '';
const initPids: number[] = [];

beforeAll(() => {
  if (!existsSync(nativeBinaries.pinns)) execFileSync('make', ['-C', fileURLToPath(new URL('../../native', import.meta.url)), 'build/crib-pinns']);
  base = mkdtempSync(join(tmpdir(), `crib-ns-test-${process.pid}-`));
});

afterAll(async () => {
  const errors: unknown[] = [];
  const attempt = async (fn: () => unknown) => {
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
  };
  for (const pid of initPids) await attempt(() => stopPodInit(pid));
  for (const name of existsSync(base) ? readdirSync(base) : []) await attempt(() => unpinPodNamespaces(join(base, name)));
  await attempt(() => rmSync(base, { recursive: true, force: true }));
  expect(errors).toEqual([]);
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(base);
});

const nsInode = (path: string): number => statSync(path).ino;

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.split(' ')[4]?.startsWith(dir));
}

/** Host pids of every process currently in the namespace with that inode. */
function processesInNamespace(kind: string, inode: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (statSync(`/proc/${entry}/ns/${kind}`).ino === inode) found.push(Number(entry));
    } catch {
      // the process exited while we looked
    }
  }
  return found;
}

function childrenOf(pid: number): { pid: number; state: string }[] {
  const out: { pid: number; state: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push({ pid: Number(entry), state: fields[0]! });
    } catch {
      // gone
    }
  }
  return out;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('pinPodNamespaces', () => {
  it('pins new net, ipc and uts namespaces with hostname, sysctls and lo up, leaving no process', async () => {
    const dir = join(base, 'full');
    const pinned = await pinPodNamespaces({
      dir,
      net: true,
      ipc: true,
      uts: true,
      hostname: 'pod-one',
      sysctls: { 'net.ipv4.ip_unprivileged_port_start': '80', 'kernel.shmmni': '1234' },
    });
    expect(pinned).toEqual({ dir, net: join(dir, 'net'), ipc: join(dir, 'ipc'), uts: join(dir, 'uts') });
    for (const kind of ['net', 'ipc', 'uts'] as const) {
      expect(nsInode(pinned[kind]!)).not.toBe(nsInode(`/proc/self/ns/${kind}`));
      // Held by the mount alone: no process lives in the namespace.
      expect(processesInNamespace(kind, nsInode(pinned[kind]!))).toEqual([]);
    }
    expect(mountsUnder(dir)).toHaveLength(3);

    const nsenter = (flag: string, ...cmd: string[]) => execFileSync('nsenter', [flag, ...cmd], { encoding: 'utf8' });
    expect(nsenter(`--uts=${pinned.uts}`, 'hostname').trim()).toBe('pod-one');
    expect(nsenter(`--net=${pinned.net}`, 'cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start').trim()).toBe('80');
    expect(nsenter(`--ipc=${pinned.ipc}`, 'cat', '/proc/sys/kernel/shmmni').trim()).toBe('1234');
    expect(readFileSync('/proc/sys/kernel/shmmni', 'utf8').trim()).not.toBe('1234');
    const lo = nsenter(`--net=${pinned.net}`, 'ip', '-o', 'link', 'show', 'lo');
    expect(lo).toMatch(/[<,]UP[,>]/);
    // The pod's loopback answers.
    expect(nsenter(`--net=${pinned.net}`, 'busybox', 'ping', '-c', '1', '-W', '5', '127.0.0.1')).toMatch(/1 packets received/);

    await unpinPodNamespaces(dir);
    expect(mountsUnder(dir)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    await unpinPodNamespaces(dir); // idempotent
  });

  it('pins only what is asked for', async () => {
    const dir = join(base, 'netonly');
    const pinned = await pinPodNamespaces({ dir, net: true });
    expect(pinned).toEqual({ dir, net: join(dir, 'net') });
    expect(readdirSync(dir)).toEqual(['net']);
    await unpinPodNamespaces(dir);
  });

  it('leaves nothing behind when a step fails inside the new namespaces', async () => {
    const dir = join(base, 'fails');
    const err = await pinPodNamespaces({
      dir,
      net: true,
      uts: true,
      hostname: 'x',
      sysctls: { 'net.ipv4.no_such_sysctl_crib': '1' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InternalError);
    expect((err as Error).message).toMatch(/net\.ipv4\.no_such_sysctl_crib.*No such file or directory/);
    expect(existsSync(dir)).toBe(false);
    expect(mountsUnder(dir)).toEqual([]);
  });

  it('refuses sysctls and hostnames that would change the host', async () => {
    const dir = join(base, 'refused');
    await expect(pinPodNamespaces({ dir, net: true, sysctls: { 'kernel.pid_max': '100' } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(pinPodNamespaces({ dir, net: true, sysctls: { 'kernel.shmmax': '100' } })).rejects.toThrow(/ipc namespace/);
    await expect(pinPodNamespaces({ dir, net: true, hostname: 'x' })).rejects.toThrow(/uts namespace/);
    await expect(pinPodNamespaces({ dir, net: true, sysctls: { 'net/../../kernel/x': '1' } })).rejects.toBeInstanceOf(InvalidArgumentError);
    // The C side refuses on its own too, for any caller that skips the TS checks.
    expect(() => execFileSync(nativeBinaries.pinns, ['--dir', dir, '--net', '--sysctl', 'vm.swappiness=1'], { stdio: 'pipe' })).toThrow(/not namespaced/);
    expect(() => execFileSync(nativeBinaries.pinns, ['--dir', dir, '--net', '--hostname', 'h'], { stdio: 'pipe' })).toThrow(/needs --uts/);
    expect(existsSync(dir)).toBe(false);
  });

  it('never stacks a second namespace over a pinned one', async () => {
    const dir = join(base, 'twice');
    const first = await pinPodNamespaces({ dir, net: true });
    const inode = nsInode(first.net!);
    await expect(pinPodNamespaces({ dir, net: true })).rejects.toBeInstanceOf(AlreadyExistsError);
    expect(nsInode(first.net!)).toBe(inode);
    expect(mountsUnder(dir)).toHaveLength(1);
    await unpinPodNamespaces(dir);
  });
});

describe('pod init', () => {
  it('runs in its own PID namespace joined to the pinned ones, reaps orphans, and stops', async () => {
    const dir = join(base, 'podinit');
    const pinned = await pinPodNamespaces({ dir, net: true, ipc: true, uts: true, hostname: 'pidpod' });
    const pid = await startPodInit(dir);
    initPids.push(pid);
    expect(await isPodInit(pid)).toBe(true);
    expect(nsInode(podInitPidNamespace(pid))).not.toBe(nsInode('/proc/self/ns/pid'));
    for (const kind of ['net', 'ipc', 'uts'] as const) expect(nsInode(`/proc/${pid}/ns/${kind}`)).toBe(nsInode(pinned[kind]!));
    // It is PID 1 of its namespace.
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+1$/m);

    // A shell in the pod's PID namespace starts a sleep and exits at once: the orphaned sleep is
    // reparented to the pod init, which must reap it when it exits (else it stays a zombie).
    execFileSync('nsenter', [`--pid=${podInitPidNamespace(pid)}`, '--', 'busybox', 'sh', '-c', 'busybox sleep 2 </dev/null >/dev/null 2>&1 &']);
    await waitFor('the orphan to be reparented to pod init', () => childrenOf(pid).length === 1);
    const orphan = childrenOf(pid)[0]!.pid;
    await waitFor('the orphan to be reaped', () => !existsSync(`/proc/${orphan}`));
    expect(childrenOf(pid)).toEqual([]);

    await stopPodInit(pid);
    await waitFor('pod init to exit', () => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
      } catch {
        return true;
      }
    });
    await stopPodInit(pid); // idempotent
    await unpinPodNamespaces(dir);
  });

  it('fails cleanly when the pinned files are not namespaces', async () => {
    const dir = join(base, 'notns');
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('touch', [join(dir, 'net')]);
    await expect(startPodInit(dir)).rejects.toThrow(/setns .*net.*Invalid argument/);
    rmSync(dir, { recursive: true, force: true });
  });
});
