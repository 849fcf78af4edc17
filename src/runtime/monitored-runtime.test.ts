// MonitoredRuntime's delete and deleteExited, and which helper runs an ExecSync, over a stand-in
// OCI runtime: a shell script with runc's command line that logs each call and, for `delete`,
// removes <root>/<id> as crib-runtime does (or fails when the container's dir holds a file named
// "refuse"); for `exec`, prints a result as crib-runtime's --capture-output does, or output for
// crib-monitor to capture. No root, and no container monitor (the containers' dirs have no control
// socket: there is no monitor to tell). What the real runtime does is tested by native/test/ and
// critest/runtime-state.test.ts.
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RuntimeRef } from './container-runtime.js';
import { MonitoredRuntime } from './monitored-runtime.js';

describe('MonitoredRuntime over a stand-in runtime: deleting a container\'s state, running an ExecSync', () => {
  let base: string;
  let root: string;
  let calls: string;
  let binary: string;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'crib-monitored-runtime-'));
    root = join(base, 'root');
    calls = join(base, 'calls');
    binary = join(base, 'runtime');
    await mkdir(root);
    await writeFile(calls, '');
    // argv: --root ROOT delete --force ID
    await writeFile(binary, [
      '#!/bin/sh',
      `echo "$*" >> '${calls}'`,
      'if [ "$3" = delete ]; then',
      '  [ -e "$2/$5/refuse" ] && { echo "refused to delete $5" >&2; exit 1; }',
      '  [ -d "$2/$5" ] || { echo "container $5 does not exist" >&2; exit 1; }',
      '  rm -rf "$2/$5"',
      'fi',
      // ExecSync: crib-runtime prints the result itself; another runtime's output is the monitor's to capture.
      'if [ "$3" = exec ]; then',
      '  case "$*" in *--capture-output*) echo \'{"exitCode": 3, "stdout": "c2VsZg==", "stderr": "", "timedOut": false, "truncated": false}\'; exit 0;; esac',
      '  echo monitored; exit 4',
      'fi',
      '',
    ].join('\n'));
    await chmod(binary, 0o755);
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const runtimeCalls = async () => (await readFile(calls, 'utf8')).split('\n').filter(Boolean);
  /** A container whose runtime state (its dir under the root) exists, or not. */
  const container = async (name: string, withState: boolean): Promise<RuntimeRef> => {
    const id = name.padEnd(64, '0');
    const dir = join(base, 'containers', id);
    await mkdir(dir, { recursive: true });
    if (withState) await mkdir(join(root, id));
    return { id, dir };
  };

  it('deletes an exited container\'s state once; the removal\'s delete then runs nothing', async () => {
    const rt = new MonitoredRuntime('crib', binary, root, { stateDirPerId: true });
    const c = await container('a', true);
    await rt.deleteExited(c);
    expect(existsSync(join(root, c.id))).toBe(false);
    await rt.deleteExited(c);
    await rt.delete(c);
    expect(await runtimeCalls()).toEqual([`--root ${root} delete --force ${c.id}`]);
  });

  it('runs nothing for a container without state (deleted already, or never created)', async () => {
    const rt = new MonitoredRuntime('crib', binary, root, { stateDirPerId: true });
    const c = await container('b', false);
    await rt.deleteExited(c);
    await rt.delete(c);
    expect(await runtimeCalls()).toEqual([]);
  });

  it('deletes in the removal what a failed deleteExited left, the error carrying the runtime\'s words', async () => {
    const rt = new MonitoredRuntime('crib', binary, root, { stateDirPerId: true });
    const c = await container('c', true);
    await writeFile(join(root, c.id, 'refuse'), '');
    await expect(rt.deleteExited(c)).rejects.toThrow(`refused to delete ${c.id}`);
    expect(existsSync(join(root, c.id))).toBe(true);
    await rm(join(root, c.id, 'refuse'));
    await rt.delete(c);
    expect(existsSync(join(root, c.id))).toBe(false);
    expect(await runtimeCalls()).toEqual([`--root ${root} delete --force ${c.id}`, `--root ${root} delete --force ${c.id}`]);
  });

  it('assumes nothing of the layout of a runtime not known to keep <root>/<id>: it runs delete', async () => {
    const rt = new MonitoredRuntime('other', binary, root);
    const gone = await container('d', false);
    await rt.delete(gone);
    // After its own deleteExited, it knows.
    const c = await container('e', true);
    await rt.deleteExited(c);
    await rt.delete(c);
    expect(await runtimeCalls()).toEqual([`--root ${root} delete --force ${gone.id}`, `--root ${root} delete --force ${c.id}`]);
  });

  it('runs crib-runtime\'s ExecSync with no monitor (--capture-output), and another runtime\'s under crib-monitor', async () => {
    const proc = { args: ['true'], cwd: '/', user: { uid: 0, gid: 0 } };
    const own = new MonitoredRuntime('crib', binary, root, { stateDirPerId: true, captureExec: true });
    const c = await container('f', true);
    const r = await own.execSync(c, proc, { timeoutSeconds: 5, maxOutput: 100 });
    expect(r).toMatchObject({ exitCode: 3, timedOut: false });
    expect(r.stdout.toString()).toBe('self');
    expect(await runtimeCalls()).toEqual([
      expect.stringMatching(new RegExp(`^--root ${root} exec --process /proc/\\d+/fd/\\d+ --capture-output 100 --timeout 5 ${c.id}$`)),
    ]);
    const other = new MonitoredRuntime('other', binary, root);
    const r2 = await other.execSync(c, proc, { timeoutSeconds: 5, maxOutput: 100 });
    expect(r2).toMatchObject({ exitCode: 4, timedOut: false });
    expect(r2.stdout.toString()).toBe('monitored\n');
    expect((await runtimeCalls())[1]).toMatch(new RegExp(`^--root ${root} exec --process \\S+ --pid-file ${c.dir}/exec-[0-9a-f]+\\.pid ${c.id}$`));
  });
});
