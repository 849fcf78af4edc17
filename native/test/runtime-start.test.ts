// `crib-runtime start` returns only once the container's process has exec'd its program
// (native/src/exec-fifo.h), fails clearly when the init dies or fails first, and never hangs.
// Containers are created under the child-subreaper helper (standing in for crib-monitor) so
// their exit codes are observed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle, testTag, type Bundle, type Spec } from './support/runtime-bundle.js';
import {
  NOTHING_LEFT, Runtime, buildHelper, deleteListed, leftovers, runProcess, waitFor,
} from './support/runtime-runner.js';

let rt: Runtime;
let helpers: string;
let reaperBin: string;
let startThenKill: string;
const bundles: Bundle[] = [];
const reapers: Reaper[] = [];

beforeAll(async () => {
  rt = await Runtime.crib();
  helpers = await mkdtemp(join(tmpdir(), `${testTag}-start-`));
  reaperBin = buildHelper('runtime-reaper', helpers);
  startThenKill = buildHelper('start-then-kill', helpers);
});

afterAll(async () => {
  for (const r of reapers) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
  const listed = await deleteListed(rt);
  await Promise.all(reapers.map((r) => r.done));
  for (const b of bundles) await b.remove();
  await rm(helpers, { recursive: true, force: true });
  await rm(rt.root, { recursive: true, force: true });
  expect(listed).toEqual([]);
  expect(leftovers()).toEqual(NOTHING_LEFT);
});

/** `<runtime> create` run under the subreaper helper; reports arrive on its fd 3. */
class Reaper {
  readonly lines: string[] = [];
  stderr = '';
  readonly done: Promise<void>;
  constructor(readonly proc: ChildProcess) {
    proc.stdio[3]!.on('data', (d: Buffer) => this.lines.push(...d.toString().split('\n').filter(Boolean)));
    proc.stderr!.on('data', (d) => { this.stderr += d; });
    this.done = new Promise((r) => proc.on('close', () => r()));
  }

  cmdCode(): Promise<number> {
    return waitFor('create to finish', () => {
      const l = this.lines.find((x) => x.startsWith('cmd '));
      return l === undefined ? undefined : { c: Number(l.split(' ')[1]) };
    }).then((x) => x.c);
  }

  /** The exit code of pid, or undefined if it has not exited within timeoutMs. */
  async exitCode(pid: number, timeoutMs = 20_000): Promise<number | undefined> {
    try {
      return (await waitFor(`container ${pid} to exit`, () => {
        const l = this.lines.find((x) => x.startsWith(`exit ${pid} `));
        return l === undefined ? undefined : { c: Number(l.split(' ')[2]) };
      }, timeoutMs)).c;
    } catch {
      return undefined;
    }
  }
}

async function create(r: Runtime, args: string[], patch?: (s: Spec) => void, prepare?: (b: Bundle) => Promise<void>):
  Promise<{ b: Bundle; reaper: Reaper; pid: number }> {
  const b = await makeBundle('start', args, patch);
  bundles.push(b);
  await prepare?.(b);
  const proc = spawn(reaperBin, [r.bin, ...r.prefix, '--root', r.root, 'create', '--bundle', b.dir, '--pid-file', join(b.dir, 'pid'), b.id],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  const reaper = new Reaper(proc);
  reapers.push(reaper);
  const code = await reaper.cmdCode();
  if (code !== 0) throw new Error(`create ${b.id}: exit ${code}: ${reaper.stderr}`);
  return { b, reaper, pid: Number(await readFile(join(b.dir, 'pid'), 'utf8')) };
}

const TRAP = ['sh', '-c', 'trap "exit 7" TERM; sleep 1000 & wait'];

describe('start returns once the process has exec\'d', () => {
  it('the process runs its program the moment start returns, and a SIGTERM then always reaches its trap (50 of 50)', async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < 50; i++) {
      const { b, reaper, pid } = await create(rt, TRAP);
      // start; at once (one helper, no daemon in between) look at what the process runs; 100 ms
      // later `kill` it with SIGTERM. The 100 ms are for sh to set its trap after its exec (10 ms
      // were too few on a loaded CI machine: one run in 50 lost the signal to an sh still
      // starting); a parked init, though, is PID 1 of its namespace and drops a signal it has no
      // handler for: after a start that returned before the exec, the SIGTERM could be lost, and
      // what it runs at once would not be busybox.
      const r = await runProcess(startThenKill, [rt.bin, rt.root, b.id, String(pid), 'TERM', '100000']);
      const code = await reaper.exitCode(pid, 3000);
      outcomes.push(`${r.stdout.trim()} exit ${code ?? 'none (SIGTERM lost)'}`);
      if (code === undefined) process.kill(pid, 'SIGKILL');
      await reaper.exitCode(pid);
      expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
    }
    expect(outcomes.filter((o) => o !== 'start 0 exe busybox kill 0 exit 7')).toEqual([]);
  }, 120_000);
});

describe('start fails clearly when the process does not get to run', () => {
  const sh = (script: string) => ({ path: '/bin/sh', args: ['sh', '-c', script] });

  it('a failing startContainer hook: start fails with the hook\'s error, the container is stopped', async () => {
    const { b, reaper, pid } = await create(rt, ['true'], (s) => { s.hooks = { startContainer: [sh('exit 3')] }; });
    const r = await rt.exec(['start', b.id]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`crib-runtime: container \`${b.id}\`: hooks.startContainer[0] \`/bin/sh\`: exited with status 3\n`);
    expect(await reaper.exitCode(pid)).toBe(1);
    expect((await rt.state(b.id)).status).toBe('stopped');
    expect((await rt.exec(['delete', b.id])).code).toBe(0);
  });

  it('an init killed while start waits: start fails saying so, promptly', async () => {
    // The hook holds the init after its release; SIGKILL it from outside meanwhile.
    const { b, reaper, pid } = await create(rt, ['true'], (s) => { s.hooks = { startContainer: [sh('sleep 1000')] }; });
    const t0 = Date.now();
    const start = rt.exec(['start', b.id]);
    await waitFor('the hook to run', () => !existsSync(join(rt.root, b.id, 'exec.fifo')));
    process.kill(pid, 'SIGKILL');
    const r = await start;
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`crib-runtime: container \`${b.id}\`: its process ${pid} died before exec'ing its program, without a report (killed?): No such process\n`);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await reaper.exitCode(pid)).toBe(137);
    expect((await rt.state(b.id)).status).toBe('stopped');
    expect((await rt.exec(['delete', '--force', b.id])).code).toBe(0);
  });

  it('an init killed while parked: start refuses it as stopped', async () => {
    const { b, reaper, pid } = await create(rt, ['true']);
    process.kill(pid, 'SIGKILL');
    expect(await reaper.exitCode(pid)).toBe(137);
    const r = await rt.exec(['start', b.id]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/container `.*` is stopped: only a created container can be started/);
    expect((await rt.exec(['delete', b.id])).code).toBe(0);
  });

  it('a program that vanished after create: start fails with the exec error, the container is stopped', async () => {
    const program = (b: Bundle) => join(b.rootfs, 'bin', 'vanishing');
    const { b, reaper, pid } = await create(rt, ['/bin/vanishing'], undefined, (bundle) => copyFile('/bin/busybox', program(bundle)));
    await unlink(program(b));
    const r = await rt.exec(['start', b.id]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`crib-runtime: container \`${b.id}\`: exec \`/bin/vanishing\`: No such file or directory\n`);
    // 127, as a shell reports a command it could not run.
    expect(await reaper.exitCode(pid)).toBe(127);
    // The container's log (its stderr) says it too.
    expect(reaper.stderr).toContain('crib-runtime: exec `/bin/vanishing`: No such file or directory');
    expect((await rt.state(b.id)).status).toBe('stopped');
    expect((await rt.exec(['delete', b.id])).code).toBe(0);
  });

  it('a second start while the first waits is refused; the first one completes', async () => {
    const { b, reaper, pid } = await create(rt, ['sh', '-c', 'exit 5'], (s) => { s.hooks = { startContainer: [sh('sleep 1')] }; });
    const first = rt.exec(['start', b.id]);
    await waitFor('the release', () => !existsSync(join(rt.root, b.id, 'exec.fifo')));
    const second = await rt.exec(['start', b.id]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/container `.*` is (being started by another call|running: only a created container can be started)/);
    expect(await first).toMatchObject({ code: 0, stderr: '' });
    expect(await reaper.exitCode(pid)).toBe(5);
    expect((await rt.exec(['delete', b.id])).code).toBe(0);
  });

  it('a container made before exec-result.fifo existed is still released (without the wait)', async () => {
    const { b, reaper, pid } = await create(rt, ['sh', '-c', 'exit 4']);
    await unlink(join(rt.root, b.id, 'exec-result.fifo'));
    expect(await rt.exec(['start', b.id])).toMatchObject({ code: 0, stderr: '' });
    expect(await reaper.exitCode(pid)).toBe(4);
    expect((await rt.exec(['delete', b.id])).code).toBe(0);
  });
});
