// The `crib` command end to end: the real binary (dist/cli.js, as `bin` installs it) against a
// real daemon and a real registry. Every verb, its table and JSON/YAML output, filters, short ids,
// errors and exit codes, and a pull whose live progress is drawn in a pseudo-terminal (script(1)).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CLI, startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';
import { buildImage, busyboxRootfsLayer, layerFromEntries, pushBusybox, pushImage, writeOciArchive } from '../test-support/image-builder.js';
import { startRegistry, type TestRegistry } from '../test-support/registry.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `crib ARGS` against the test daemon; never throws on a non-zero exit. */
function crib(d: TestDaemon | undefined, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<Run> {
  const global = d ? ['--address', `unix://${d.socket}`] : [];
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [CLI, ...global, ...args], { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      if (err && code === -1) reject(err);
      else resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** Run a command line in a pseudo-terminal (util-linux script), capturing what the terminal got. */
function inPty(command: string, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile('script', ['-qefc', command, '/dev/null'], { timeout: timeoutMs, maxBuffer: 16 << 20, env: { ...process.env, COLUMNS: '120', LINES: '40' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        if (err && code === -1) reject(err);
        else resolve({ code, stdout, stderr });
      });
  });
}

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** An HTTP proxy to the registry that sends blob bodies slowly, so a pull takes seconds. */
async function slowProxy(target: string, bytesPerTick: number, tickMs: number): Promise<{ host: string; close: () => Promise<void> }> {
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    const up = httpRequest({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (!/\/blobs\/sha256:/.test(req.url ?? '') || req.method !== 'GET') {
        ur.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      ur.on('data', (c: Buffer) => chunks.push(c));
      ur.on('end', () => {
        const body = Buffer.concat(chunks);
        let off = 0;
        const tick = () => {
          if (res.destroyed) return;
          if (off >= body.length) {
            res.end();
            return;
          }
          res.write(body.subarray(off, off + bytesPerTick));
          off += bytesPerTick;
          setTimeout(tick, tickMs);
        };
        tick();
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describe('the crib command', { timeout: 400_000 }, () => {
  let registry: TestRegistry;
  let d: TestDaemon;
  let dir: string;
  let image: string;
  let imageId: string;
  const spawned: ChildProcess[] = [];

  const podYaml = (name: string, extra = '') =>
    `metadata:\n  name: ${name}\n  namespace: cli\n  uid: uid-${name}-${process.pid}\n  attempt: 0\n` +
    `hostname: ${name}\nlog_directory: ${join(dir, 'logs', name)}\nlabels:\n  app: ${name}\n  team.example.com/owner: cli\nlinux: {}\n${extra}`;
  const containerJson = (name: string, args: string[], extra: Record<string, unknown> = {}) => JSON.stringify({
    metadata: { name, attempt: 0 },
    image: { image },
    command: ['/bin/sh', '-c'],
    args,
    log_path: `${name}.log`,
    labels: { c: name },
    ...extra,
  });

  async function files(name: string, args: string[], extra: Record<string, unknown> = {}, podExtra = ''): Promise<{ pod: string; ctr: string }> {
    const pod = join(dir, `${name}-pod.yaml`);
    const ctr = join(dir, `${name}-ctr.json`);
    await writeFile(pod, podYaml(name, podExtra));
    await writeFile(ctr, containerJson(name, args, extra));
    return { pod, ctr };
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-cli-'));
    registry = await startRegistry();
    await pushBusybox(registry, 'library/busybox', 'latest');
    image = `${registry.host}/library/busybox:latest`;
    d = await startDaemon();
  });
  afterAll(async () => {
    for (const p of spawned) if (p.exitCode === null) p.kill('SIGKILL');
    await d?.cleanup();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is the package\'s bin, with a shebang', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin.crib).toBe('dist/cli.js');
    expect(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('has --help on every verb, and completion scripts generated from the same tree', async () => {
    const top = await crib(undefined, ['--help']);
    expect(top.code).toBe(0);
    const verbs = [...top.stdout.split('Commands:')[1]!.matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]!).filter((v) => v !== 'help');
    for (const v of ['info', 'version', 'pull', 'images', 'rmi', 'pods', 'ps', 'inspect', 'inspectp', 'inspecti', 'runp', 'create', 'run',
      'start', 'stop', 'stopp', 'rm', 'rmp', 'logs', 'exec', 'attach', 'port-forward', 'stats', 'statsp', 'image', 'completion', 'daemon']) {
      expect(verbs).toContain(v);
    }
    // Four at a time: each is a node process start, slow on a loaded 2-core machine.
    for (let i = 0; i < verbs.length; i += 4) {
      await Promise.all(verbs.slice(i, i + 4).map(async (v) => {
        const h = await crib(undefined, [v, '--help']);
        expect(h.code, v).toBe(0);
        expect(h.stdout, v).toContain(`Usage: crib ${v}`);
      }));
    }
    const bash = await crib(undefined, ['completion', 'bash']);
    expect(bash.code).toBe(0);
    const script = join(dir, 'crib.bash');
    await writeFile(script, bash.stdout);
    // Complete "crib ps --a" and "crib ima" in a real bash with the generated function.
    const complete = (words: string[]) => new Promise<string>((resolve, reject) =>
      execFile('bash', ['-c', `source ${script}; COMP_WORDS=(${words.map(shq).join(' ')}); COMP_CWORD=${words.length - 1}; _crib; printf '%s\\n' "\${COMPREPLY[@]}"`],
        (err, out) => (err ? reject(err) : resolve(out))));
    expect((await complete(['crib', 'ps', '--a'])).split('\n')).toContain('--all');
    expect((await complete(['crib', 'ima'])).split('\n')).toEqual(expect.arrayContaining(['image', 'images']));
    expect((await complete(['crib', 'image', ''])).split('\n')).toContain('import');
    const zsh = await crib(undefined, ['completion', 'zsh']);
    expect(zsh.stdout).toMatch(/^#compdef crib/);
    expect(zsh.stdout).toContain('port-forward');
    const bad = await crib(undefined, ['completion', 'fish']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('use bash or zsh');
  });

  it('says what to do, with distinct exit codes, when the daemon is not there or the command line is wrong', async () => {
    const gone = await crib(undefined, ['--address', `unix://${join(dir, 'nothing.sock')}`, 'ps']);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/^crib: cannot reach the crib daemon at unix:\/\/.*nothing\.sock \(no socket at .*nothing\.sock\)\. Is it running\? Start it with "crib daemon"/);
    const unknown = await crib(d, ['pz']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'pz'");
    const badOpt = await crib(d, ['ps', '--bogus']);
    expect(badOpt.code).toBe(2);
    const badState = await crib(d, ['ps', '--state', 'sleepy']);
    expect(badState.code).toBe(2);
    expect(badState.stderr).toContain('--state "sleepy" is not a container state: use created, running, exited, unknown.');
    const badOut = await crib(d, ['images', '-o', 'xml']);
    expect(badOut.code).toBe(2);
    const missing = await crib(d, ['inspect', 'no-such-container']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('crib: no container has the id or name "no-such-container": see "crib ps -a" for the ones there are.\n');
    const noConfig = await crib(undefined, ['--config', join(dir, 'missing.toml'), 'ps']);
    expect(noConfig.code).toBe(1);
    expect(noConfig.stderr).toContain('missing.toml');
    // The address comes from the config file when --address is not given.
    const viaConfig = await crib(undefined, ['--config', d.configPath, 'version', '-o', 'json']);
    expect(viaConfig.code).toBe(0);
    expect(JSON.parse(viaConfig.stdout).runtimeName).toBe('crib');
  });

  it('version and info, as a table, JSON and YAML', async () => {
    const v = await crib(d, ['version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^Version: {2}\d+\.\d+\.\d+\nRuntimeName: {2}crib\nRuntimeVersion: {2}\S+\nRuntimeApiVersion: {2}v1\n$/);
    const y = parseYaml((await crib(d, ['version', '-o', 'yaml'])).stdout) as { runtimeName: string; runtimeApiVersion: string };
    expect(y).toMatchObject({ runtimeName: 'crib', runtimeApiVersion: 'v1' });
    const info = JSON.parse((await crib(d, ['info'])).stdout) as { status: { conditions: { type: string; status: boolean }[] } };
    expect(info.status.conditions).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'RuntimeReady', status: true })]));
    const table = await crib(d, ['info', '-o', 'table']);
    expect(table.stdout).toMatch(/^CONDITION\s+STATUS\s+REASON\s+MESSAGE\n/);
    expect(table.stdout).toMatch(/^RuntimeReady\s+true/m);
  });

  it('pulls with plain progress lines when stdout is not a terminal, then lists and inspects images', async () => {
    const pull = await crib(d, ['pull', image]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).not.toContain('\x1b');
    expect(pull.stdout).toMatch(new RegExp(`^pulling ${image.replace(/[.]/g, '\\.')}: 1 layers, [\\d.]+[kM]?B$`, 'm'));
    expect(pull.stdout).toMatch(/^layer [0-9a-f]{12}: (downloading|unpacking|done)/m);
    const summary = /^Image is up to date for (sha256:[0-9a-f]{64}) \([\d.]+[kM]?B downloaded in [\d.]+s, .*\)$/m.exec(pull.stdout);
    expect(summary).not.toBeNull();
    imageId = summary![1]!;

    const table = await crib(d, ['images']);
    expect(table.stdout).toMatch(/^IMAGE\s+TAG\s+IMAGE ID\s+SIZE\n/);
    expect(table.stdout).toContain(`${registry.host}/library/busybox   latest   ${imageId.slice(7, 20)}`);
    const json = JSON.parse((await crib(d, ['images', '-o', 'json'])).stdout) as { images: { id: string; repoTags: string[] }[] };
    expect(json.images.map((i) => i.id)).toContain(imageId);
    const yaml = parseYaml((await crib(d, ['images', '-o', 'yaml'])).stdout) as { images: { id: string }[] };
    expect(yaml.images.map((i) => i.id)).toContain(imageId);
    expect((await crib(d, ['images', '-q'])).stdout).toBe(`${imageId}\n`);
    // A short id prefix is enough, as with crictl.
    const inspected = JSON.parse((await crib(d, ['inspecti', imageId.slice(7, 12)])).stdout) as { status: { id: string; repoTags: string[] }; info: unknown };
    expect(inspected.status.id).toBe(imageId);
    expect(inspected.status.repoTags).toEqual([image]);
    const gone = await crib(d, ['inspecti', 'nosuch/image:1']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('no image matches "nosuch/image:1"');
  });

  it('draws live per-layer and overall progress in a terminal', async () => {
    const layers = await Promise.all([0, 1, 2].map((i) => layerFromEntries([{ type: 'file', path: `data${i}`, content: randomBytes(768 * 1024), mode: 0o644 }], 'none')));
    await pushImage(registry, 'library/big', 'v1', buildImage({ layers }));
    const proxy = await slowProxy(registry.url, 32 * 1024, 20);
    try {
      const ref = `${proxy.host}/library/big:v1`;
      const res = await inPty(`${shq(process.execPath)} ${shq(CLI)} --address unix://${d.socket} pull ${ref}`);
      expect(res.code, res.stdout).toBe(0);
      // cli-progress redraws in place: escape sequences, a bar per layer (12 hex of its digest)...
      expect(res.stdout).toContain('\x1b[');
      for (const l of layers) expect(res.stdout).toContain(l.digest.slice(7, 19));
      // ...and an overall line whose bytes were seen part-way, with a speed.
      const totals = [...res.stdout.matchAll(/total\s+\|[^|]*\| ([\d.]+[kM]?B)\/([\d.]+[kM]?B) ([\d.]+[kM]?B\/s)/g)];
      expect(totals.length).toBeGreaterThan(0);
      expect(totals.some((m) => m[1] !== m[2] && m[1] !== '0B')).toBe(true);
      expect(totals.some((m) => m[1] === m[2])).toBe(true);
      expect(res.stdout).toMatch(/Image is up to date for sha256:[0-9a-f]{64}/);
    } finally {
      await proxy.close();
    }
    const rmi = await crib(d, ['rmi', `${proxy.host}/library/big:v1`]);
    expect(rmi.code).toBe(0);
    expect(rmi.stdout).toBe(`Deleted: ${proxy.host}/library/big:v1\n`);
  });

  it('runs a pod and containers from YAML/JSON configs, lists and filters them, and cleans up', async () => {
    // stderr first, then a pause: the two streams reach the log file in a known order.
    const f = await files('web', ['echo err1 >&2; sleep 0.5; echo line1; echo line2; echo line3; exec sleep 1000']);
    const runp = await crib(d, ['runp', f.pod]);
    expect(runp.code, runp.stderr).toBe(0);
    const podId = runp.stdout.trim();
    expect(podId).toMatch(/^[0-9a-f]{64}$/);

    // Filters: --name regex, --label, --state, --namespace.
    expect((await crib(d, ['pods', '-q', '--name', '^we'])).stdout).toBe(`${podId}\n`);
    expect((await crib(d, ['pods', '-q', '--name', '^nope'])).stdout).toBe('');
    expect((await crib(d, ['pods', '-q', '--label', 'team.example.com/owner=cli'])).stdout).toBe(`${podId}\n`);
    expect((await crib(d, ['pods', '-q', '--state', 'notready'])).stdout).toBe('');
    const podsTable = await crib(d, ['pods']);
    expect(podsTable.stdout).toMatch(/^POD ID\s+CREATED\s+STATE\s+NAME\s+NAMESPACE\s+ATTEMPT\s+RUNTIME\n/);
    expect(podsTable.stdout).toMatch(new RegExp(`^${podId.slice(0, 13)}\\s+.*ago\\s+Ready\\s+web\\s+cli\\s+0\\s+`, 'm'));
    const podsJson = JSON.parse((await crib(d, ['pods', '-o', 'json'])).stdout) as { items: { id: string; labels: Record<string, string> }[] };
    // Map keys of the config file are kept as written (not camelCased).
    expect(podsJson.items.find((p) => p.id === podId)!.labels['team.example.com/owner']).toBe('cli');
    const inspectp = JSON.parse((await crib(d, ['inspectp', podId.slice(0, 6)])).stdout) as { status: { id: string; state: string; network: { ip: string } } };
    expect(inspectp.status).toMatchObject({ id: podId, state: 'SANDBOX_READY' });
    expect(inspectp.status.network.ip).toMatch(/^10\./);

    const create = await crib(d, ['create', 'web', f.ctr, f.pod]);
    expect(create.code, create.stderr).toBe(0);
    const ctrId = create.stdout.trim();
    expect((await crib(d, ['ps', '-q'])).stdout).toBe('');
    expect((await crib(d, ['ps', '-q', '-a'])).stdout).toBe(`${ctrId}\n`);
    expect((await crib(d, ['ps', '-q', '--state', 'created'])).stdout).toBe(`${ctrId}\n`);
    const start = await crib(d, ['start', ctrId.slice(0, 8)]);
    expect(start.code, start.stderr).toBe(0);
    expect((await crib(d, ['ps', '-q'])).stdout).toBe(`${ctrId}\n`);
    expect((await crib(d, ['ps', '-q', '--pod', 'web', '--label', 'c=web', '--name', 'we.'])).stdout).toBe(`${ctrId}\n`);
    expect((await crib(d, ['ps', '-q', '--label', 'c=other'])).stdout).toBe('');
    const ps = await crib(d, ['ps']);
    expect(ps.stdout).toMatch(/^CONTAINER\s+IMAGE\s+CREATED\s+STATE\s+NAME\s+ATTEMPT\s+POD ID\s+POD\n/);
    expect(ps.stdout).toMatch(new RegExp(`^${ctrId.slice(0, 13)}\\s+${image.replace(/[.]/g, '\\.')}\\s+.*ago\\s+Running\\s+web\\s+0\\s+${podId.slice(0, 13)}\\s+web$`, 'm'));
    const psYaml = parseYaml((await crib(d, ['ps', '-o', 'yaml'])).stdout) as { containers: { id: string; state: string }[] };
    expect(psYaml.containers).toEqual([expect.objectContaining({ id: ctrId, state: 'CONTAINER_RUNNING' })]);
    const inspect = JSON.parse((await crib(d, ['inspect', 'web'])).stdout) as { status: { id: string; logPath: string }; info: Record<string, unknown> };
    expect(inspect.status.id).toBe(ctrId);
    expect(inspect.status.logPath).toBe(join(dir, 'logs', 'web', 'web.log'));

    // logs: stdout and stderr to their own streams, --tail, --since, -t.
    await waitFor('log lines', () => existsSync(inspect.status.logPath) && readFileSync(inspect.status.logPath, 'utf8').includes('line3'));
    const logs = await crib(d, ['logs', 'web']);
    expect(logs.stdout).toBe('line1\nline2\nline3\n');
    expect(logs.stderr).toBe('err1\n');
    expect(await crib(d, ['logs', '--tail', '2', 'web'])).toEqual({ code: 0, stdout: 'line2\nline3\n', stderr: '' });
    expect(await crib(d, ['logs', '--tail', '4', 'web'])).toEqual({ code: 0, stdout: 'line1\nline2\nline3\n', stderr: 'err1\n' });
    expect(await crib(d, ['logs', '--tail', '0', 'web'])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect((await crib(d, ['logs', '--since', '1h', 'web'])).stdout).toBe('line1\nline2\nline3\n');
    expect((await crib(d, ['logs', '--since', new Date(Date.now() + 3_600_000).toISOString(), 'web'])).stdout).toBe('');
    expect((await crib(d, ['logs', '-t', 'web'])).stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+ line1\n/);
    expect((await crib(d, ['logs', '--since', 'yesterday-ish', 'web'])).code).toBe(2);

    // exec: output streams and the command's exit code; --sync through ExecSync.
    const ex = await crib(d, ['exec', 'web', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(ex).toEqual({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    const exSync = await crib(d, ['exec', '--sync', ctrId.slice(0, 10), 'cat', '/etc/hostname']);
    expect(exSync).toEqual({ code: 0, stdout: 'web\n', stderr: '' });
    const exIn = await crib(d, ['exec', '-i', 'web', 'wc', '-c'], { input: 'twelve bytes' });
    expect(exIn.stdout.trim()).toBe('12');
    const exTty = await inPty(`${shq(process.execPath)} ${shq(CLI)} --address unix://${d.socket} exec -it web readlink /proc/self/fd/0`);
    expect(exTty.code, exTty.stdout).toBe(0);
    expect(exTty.stdout).toMatch(/^\/dev\/pts\/\d+\r*\n/);

    // stats
    const stats = await crib(d, ['stats']);
    expect(stats.stdout).toMatch(/^CONTAINER\s+NAME\s+CPU %\s+MEM\s+DISK\s+INODES\n/);
    expect(stats.stdout).toMatch(new RegExp(`^${ctrId.slice(0, 13)}\\s+web\\s+[\\d.]+\\s+[\\d.]+[kMG]?B`, 'm'));
    const statsJson = JSON.parse((await crib(d, ['stats', '-o', 'json', 'web'])).stdout) as { stats: { attributes: { id: string }; memory: { workingSetBytes: { value: string } } }[] };
    expect(statsJson.stats).toHaveLength(1);
    expect(Number(statsJson.stats[0]!.memory.workingSetBytes.value)).toBeGreaterThan(0);
    const statsp = JSON.parse((await crib(d, ['statsp', '-o', 'json', '--id', podId.slice(0, 8)])).stdout) as { stats: { attributes: { id: string } }[] };
    expect(statsp.stats.map((s) => s.attributes.id)).toEqual([podId]);
    expect((await crib(d, ['statsp'])).stdout).toMatch(new RegExp(`^web\\s+${podId.slice(0, 13)}\\s+[\\d.]+\\s+`, 'm'));

    // logs -f returns once the container stops, with what it wrote meanwhile.
    const follow = crib(d, ['logs', '-f', '--tail', '1', 'web']);
    await new Promise((r) => setTimeout(r, 700));
    const runningRm = await crib(d, ['rm', 'web']);
    expect(runningRm.code).toBe(1);
    expect(runningRm.stderr).toContain('is running: stop it first with "crib stop');
    const stop = await crib(d, ['stop', 'web']);
    expect(stop).toMatchObject({ code: 0, stdout: `${ctrId}\n` });
    const followed = await follow;
    expect(followed).toEqual({ code: 0, stdout: 'line3\n', stderr: '' });
    expect((await crib(d, ['ps', '-q', '--state', 'exited'])).stdout).toBe(`${ctrId}\n`);
    expect((await crib(d, ['rm', 'web'])).code).toBe(0);
    expect((await crib(d, ['ps', '-qa'])).stdout).toBe('');

    const rmpRunning = await crib(d, ['rmp', 'web']);
    expect(rmpRunning.code).toBe(1);
    expect(rmpRunning.stderr).toContain('crib stopp');
    expect((await crib(d, ['stopp', 'web'])).stdout).toBe(`Stopped sandbox ${podId}\n`);
    expect((await crib(d, ['pods', '-q', '--state', 'notready'])).stdout).toBe(`${podId}\n`);
    expect((await crib(d, ['rmp', podId.slice(0, 5)])).stdout).toBe(`Removed sandbox ${podId}\n`);
    expect((await crib(d, ['pods', '-q'])).stdout).toBe('');
  });

  it('run = runp + create + start; attach with stdin; port-forward to a pod port; rmp -f', async () => {
    const f = await files('srv', ['exec httpd -f -p 8080 -h /var/www']);
    const run = await crib(d, ['run', f.ctr, f.pod]);
    expect(run.code, run.stderr).toBe(0);
    const ctrId = run.stdout.trim();
    expect((await crib(d, ['ps', '-q', '--pod', 'srv'])).stdout).toBe(`${ctrId}\n`);

    const pf = spawn(process.execPath, [CLI, '--address', `unix://${d.socket}`, 'port-forward', 'srv', ':8080'], { stdio: ['ignore', 'pipe', 'pipe'] });
    spawned.push(pf);
    let out = '';
    pf.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const port = Number((await waitFor('port-forward listening', () => /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/.exec(out)?.[1])));
    const body = await waitFor('an answer through the forward', () => new Promise<string | undefined>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.end('GET /index.html HTTP/1.0\r\n\r\n'));
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString()));
      s.on('close', () => resolve(got.includes('hello from crib') ? got : undefined));
      s.on('error', () => resolve(undefined));
    }));
    expect(body).toMatch(/^HTTP\/1\.[01] 200/);
    pf.kill('SIGINT');
    expect(await new Promise((r) => pf.once('exit', r))).toBe(0);

    // attach: a container reading stdin once; what we send comes back on its stdout.
    const a = await files('cat', ['read line; echo "got $line"'], { stdin: true, stdin_once: true });
    const podId = (await crib(d, ['runp', a.pod])).stdout.trim();
    const catId = (await crib(d, ['create', podId, a.ctr, a.pod])).stdout.trim();
    expect((await crib(d, ['start', catId])).code).toBe(0);
    const attached = await crib(d, ['attach', '-i', catId], { input: 'hello\n' });
    expect(attached.stdout).toBe('got hello\n');
    expect(attached.code).toBe(0);

    const rmp = await crib(d, ['rmp', '-f', '--all']);
    expect(rmp.code, rmp.stderr).toBe(0);
    expect((await crib(d, ['pods', '-q'])).stdout).toBe('');
  });

  it('imports and exports OCI archives, and removes images by short id', async () => {
    const img = buildImage({ layers: [await busyboxRootfsLayer({ extra: [{ type: 'file', path: 'imported', content: 'yes', mode: 0o644 }] })] });
    const archive = join(dir, 'image.tar');
    await writeOciArchive(archive, [{ image: img, name: 'example.com/imported:1' }]);
    const imp = await crib(d, ['image', 'import', archive]);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout).toBe(`${img.config.digest} example.com/imported:1\n`);
    // Export writes an OCI layout that imports back to the same image.
    const exported = join(dir, 'exported.tar');
    const exp = await crib(d, ['image', 'export', 'example.com/imported:1', exported]);
    expect(exp).toMatchObject({ code: 0, stdout: `${img.config.digest} example.com/imported:1\n` });
    const again = await crib(d, ['image', 'export', 'example.com/imported:1', exported]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists: choose a new file name for the archive');
    const rmi = await crib(d, ['rmi', img.config.digest.slice(7, 14)]);
    expect(rmi).toMatchObject({ code: 0, stdout: 'Deleted: example.com/imported:1\n' });
    expect((await crib(d, ['images', '-q'])).stdout).toBe(`${imageId}\n`);
    const back = await crib(d, ['image', 'import', exported]);
    expect(back).toMatchObject({ code: 0, stdout: `${img.config.digest} example.com/imported:1\n` });
    const tarList = await new Promise<string>((resolve, reject) => execFile('tar', ['-tf', exported], (err, out) => (err ? reject(err) : resolve(out))));
    expect(tarList.split('\n')).toEqual(expect.arrayContaining(['oci-layout', 'index.json', `blobs/sha256/${img.layers[0]!.digest.slice(7)}`]));
    expect((await crib(d, ['rmi', 'example.com/imported:1'])).code).toBe(0);
  });
});
