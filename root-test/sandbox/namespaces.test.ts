// Runs the real crib-pinns against the real kernel (root). Every pin dir lives in a temp dir that
// afterAll unpins and removes, so a failing test leaves no mounts or namespaces behind.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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

  it('unpins every mount stacked on a pinned file, keeps other pod files, and never follows a symlink put in a file\'s place', async () => {
    const dir = join(base, 'stacked');
    const pinned = await pinPodNamespaces({ dir, net: true, ipc: true });
    // A second mount on the same file (a pin retried over an interrupted one).
    execFileSync('mount', ['--bind', '/proc/self/ns/net', pinned.net!]);
    expect(mountsUnder(dir)).toHaveLength(3);
    // `uts` is a symlink to a mount outside the pin dir: removing the pin must leave that mount.
    const outside = join(base, 'outside-target');
    execFileSync('touch', [outside]);
    execFileSync('mount', ['--bind', '/proc/self/ns/uts', outside]);
    try {
      symlinkSync(outside, join(dir, 'uts'));
      await unpinPodNamespaces(dir);
      expect(mountsUnder(dir)).toEqual([]);
      expect(existsSync(dir)).toBe(false);
      expect(mountsUnder(outside)).toHaveLength(1);
    } finally {
      if (mountsUnder(outside).length > 0) execFileSync('umount', ['-l', outside]);
      rmSync(outside, { force: true });
    }

    // A pod dir that also holds other files keeps them (and so stays).
    const withFiles = join(base, 'with-files');
    await pinPodNamespaces({ dir: withFiles, net: true });
    writeFileSync(join(withFiles, 'hosts'), '');
    await unpinPodNamespaces(withFiles);
    expect(readdirSync(withFiles)).toEqual(['hosts']);
    expect(mountsUnder(withFiles)).toEqual([]);
    rmSync(withFiles, { recursive: true });
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

describe('a pod user namespace', () => {
  const maps = [{ containerId: 0, hostId: 1_769_472, length: 65536 }]; // 27 * 65536
  /** The user namespace owning a namespace file (ioctl NS_GET_USERNS), as its inode. */
  const ownerOf = (nsFile: string): number => Number(execFileSync('python3', ['-c',
    'import fcntl,os,sys; fd=os.open(sys.argv[1],os.O_RDONLY); print(os.fstat(fcntl.ioctl(fd,0xb701)).st_ino)', nsFile], { encoding: 'utf8' }).trim());

  it('is made first, with the maps, and owns the pod\'s other namespaces and its PID namespace', async () => {
    const dir = join(base, 'userns');
    const pinned = await pinPodNamespaces({ dir, net: true, ipc: true, uts: true, hostname: 'u', sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' }, user: { uids: maps, gids: maps } });
    expect(pinned.user).toBe(join(dir, 'user'));
    const user = nsInode(pinned.user!);
    expect(user).not.toBe(nsInode('/proc/self/ns/user'));
    for (const kind of ['net', 'ipc', 'uts'] as const) expect(ownerOf(pinned[kind]!)).toBe(user);
    expect(processesInNamespace('user', user)).toEqual([]);
    const inside = execFileSync('nsenter', [`--user=${pinned.user}`, `--net=${pinned.net}`, 'sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; cat /proc/sys/net/ipv4/ip_unprivileged_port_start'], { encoding: 'utf8' });
    expect(inside.split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['0 1769472 65536', '0 1769472 65536', '0', '']);
    // Shared PID pods: the pod init's PID namespace belongs to the pod's user namespace, and it
    // runs as the pod's nobody.
    const pid = await startPodInit(dir);
    initPids.push(pid);
    expect(nsInode(`/proc/${pid}/ns/user`)).toBe(user);
    expect(ownerOf(podInitPidNamespace(pid))).toBe(user);
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+1835006\s/m);
    await stopPodInit(pid);
    await unpinPodNamespaces(dir);
    expect(existsSync(dir)).toBe(false);
    expect(mountsUnder(dir)).toEqual([]);
  });

  it('crib-pinns refuses bad maps on its own, leaving nothing behind', () => {
    const dir = join(base, 'badmaps');
    const pinns = (...maps: string[]) => () => execFileSync(nativeBinaries.pinns, ['--dir', dir, '--net', '--user', ...maps], { stdio: 'pipe' });
    expect(pinns('--uid-map', '0:0:65536', '--gid-map', '0:100000:65536')).toThrow(/--uid-map `0:0:65536` maps the host's id 0/);
    expect(pinns('--uid-map', '0:100000:10', '--uid-map', '5:200000:10', '--gid-map', '0:100000:1')).toThrow(/`5:200000:10` overlaps `0:100000:10`/);
    expect(pinns('--uid-map', '0:100000:10', '--uid-map', '20:100005:10', '--gid-map', '0:100000:1')).toThrow(/overlaps/);
    expect(pinns('--uid-map', '1:100000:10', '--gid-map', '0:100000:1')).toThrow(/id 0 inside the pod must be mapped/);
    expect(pinns('--uid-map', '0:100000:0', '--gid-map', '0:100000:1')).toThrow(/an empty range/);
    expect(pinns('--uid-map', '0:4294967000:65536', '--gid-map', '0:100000:1')).toThrow(/passes id 4294967294/);
    expect(pinns('--uid-map', '0:-1:5', '--gid-map', '0:100000:1')).toThrow(/expected INSIDE:OUTSIDE:COUNT/);
    expect(pinns('--gid-map', '0:100000:1')).toThrow(/--uid-map: id 0 inside the pod must be mapped/);
    expect(() => execFileSync(nativeBinaries.pinns, ['--dir', dir, '--net', '--uid-map', '0:100000:1'], { stdio: 'pipe' })).toThrow(/need --user/);
    expect(existsSync(dir)).toBe(false);
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
