// crib's binaries where a container can reach them (native/include/crib-sealed-exe.h): the init
// of a created container and crib-pinns' pod-init run from a sealed memfd copy and are
// non-dumpable, the verbs that never enter a container do not pay for a copy, and a binary
// already served from a sealed copy (as the daemon does) makes none of its own. The attacks
// themselves are in critest/security/binary-overwrite.test.ts.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memfdSeals, sealedMemfdCopy, EXE_SEALS } from '../../src/sys/sealed-memfd.js';
import { makeBundle, testTag, type Bundle } from './support/runtime-bundle.js';
import { NOTHING_LEFT, Runtime, deleteListed, hasBinary, leftovers, waitFor } from './support/runtime-runner.js';

const pinns = process.env.CRIB_PINNS_BINARY ?? fileURLToPath(new URL('../build/crib-pinns', import.meta.url));
let rt: Runtime;
let scratch: string;
const bundles: Bundle[] = [];

/** The seals of the file /proc/<pid>/exe names (-1: a plain file, which takes none). */
function exeSeals(pid: number): number {
  const fd = openSync(`/proc/${pid}/exe`, 'r');
  try {
    return memfdSeals(fd);
  } finally {
    closeSync(fd);
  }
}

/** Owner of /proc/<pid>/environ: the process's uid while dumpable, root when not. */
const procOwner = (pid: number) => statSync(`/proc/${pid}/environ`).uid;

/** Runs `bin args` under strace (its own syscalls, not its children's: those happen before any fork);
 * the memfd_create and execveat calls it made, one line each. */
async function traced(bin: string, args: string[], trace: string): Promise<{ code: number | null; calls: string[] }> {
  const out = join(scratch, `strace-${Math.random().toString(36).slice(2)}`);
  const code = await new Promise<number | null>((resolve, reject) => {
    const p = spawn('strace', ['-qq', '-e', `trace=${trace}`, '-o', out, bin, ...args], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('close', resolve);
  });
  const calls = (await readFile(out, 'utf8')).split('\n').filter((l) => /\b(memfd_create|execveat)\(/.test(l));
  return { code, calls };
}

async function parkedBundle(name: string): Promise<Bundle> {
  const b = await makeBundle(name, ['/bin/sleep', '30'], (s) => { s.process.user = { uid: 1000, gid: 1000 }; });
  bundles.push(b);
  return b;
}

beforeAll(async () => {
  rt = await Runtime.crib();
  scratch = await mkdtemp(join(tmpdir(), `${testTag}-sealed-`));
});

afterAll(async () => {
  const listed = await deleteListed(rt);
  for (const b of bundles) await b.remove();
  await rm(scratch, { recursive: true, force: true });
  await rm(rt.root, { recursive: true, force: true });
  expect(listed).toEqual([]);
  expect(leftovers()).toEqual(NOTHING_LEFT);
});

describe('crib-runtime', () => {
  it('a created container\'s init runs from a sealed memfd, non-dumpable until it execs', async () => {
    const b = await parkedBundle('parked');
    // create's init keeps its stdio: none, so nothing here waits on a pipe it holds.
    const create = spawn(rt.bin, ['--root', rt.root, 'create', '--bundle', b.dir, b.id], { stdio: 'ignore' });
    expect(await new Promise((r) => create.on('close', r))).toBe(0);
    const { pid } = await rt.state(b.id);
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe('/memfd:crib-runtime (deleted)');
    expect(exeSeals(pid) & EXE_SEALS).toBe(EXE_SEALS);
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('crib-runtime');
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+1000\s/m);
    expect(procOwner(pid)).toBe(0); // uid 1000, yet its /proc files are root's: not dumpable
    expect((await rt.exec(['start', b.id])).code).toBe(0);
    await waitFor('the exec of sleep', () => readlinkSync(`/proc/${pid}/exe`).endsWith('/bin/busybox'));
    expect(procOwner(pid)).toBe(1000); // execve made it an ordinary process of its user again
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
  });

  it('copies itself for create and exec only; served from a sealed copy it makes none', async () => {
    expect(hasBinary('strace')).toBe(true);
    const b = await parkedBundle('copies');
    const created = await traced(rt.bin, ['--root', rt.root, 'create', '--bundle', b.dir, b.id], 'memfd_create,execveat');
    expect(created.code).toBe(0);
    expect(created.calls.filter((c) => c.includes('memfd_create('))).toHaveLength(1);
    expect(created.calls.filter((c) => c.includes('execveat('))).toHaveLength(1);
    for (const verb of [['state', b.id], ['start', b.id], ['kill', b.id, 'KILL']]) {
      const r = await traced(rt.bin, ['--root', rt.root, ...verb], 'memfd_create,execveat');
      expect({ verb: verb[0], code: r.code, calls: r.calls }).toEqual({ verb: verb[0], code: 0, calls: [] });
    }
    await waitFor('the container to stop', async () => (await rt.state(b.id)).status === 'stopped');
    expect((await rt.exec(['delete', b.id])).code).toBe(0);

    // What the daemon does: a sealed copy held by this process, run by its /proc path.
    const fd = sealedMemfdCopy(rt.bin, 'crib-runtime');
    try {
      const served = `/proc/${process.pid}/fd/${fd}`;
      const again = await traced(served, ['--root', rt.root, 'create', '--bundle', b.dir, b.id], 'memfd_create,execveat');
      expect(again).toEqual({ code: 0, calls: [] });
      const { pid } = await rt.state(b.id);
      expect(statSync(`/proc/${pid}/exe`).ino).toBe(statSync(served).ino);
      expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
    } finally {
      closeSync(fd);
    }
  });
});

describe('crib-pinns pod-init', () => {
  it('runs from a sealed memfd, as nobody, with no capability, in an empty read-only root', async () => {
    const dir = await mkdtemp(join(scratch, 'pod-'));
    const pid = Number(execFileSync(pinns, ['pod-init', '--dir', dir], { encoding: 'utf8' }).trim());
    try {
      expect(readlinkSync(`/proc/${pid}/exe`)).toBe('/memfd:crib-pinns (deleted)');
      expect(exeSeals(pid) & EXE_SEALS).toBe(EXE_SEALS);
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(status).toMatch(/^Name:\s+crib-pod-init$/m);
      expect(status).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
      expect(status).toMatch(/^Gid:\s+65534\s+65534\s+65534\s+65534$/m);
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(status).toMatch(new RegExp(`^${set}:\\s+0+$`, 'm'));
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(procOwner(pid)).toBe(0); // non-dumpable
      expect(readdirSync(`/proc/${pid}/root`)).toEqual([]);
      expect(readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trim().split('\n')).toEqual([expect.stringMatching(/ \/ \/ ro,.* - tmpfs crib-pod-init /)]);
      // The pod's pin dir is untouched outside pod-init's own mount namespace.
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      process.kill(pid, 'SIGKILL');
      await waitFor('pod-init to go', () => {
        try {
          return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
        } catch {
          return true;
        }
      });
    }
  });
});
