// The daemon as a process: socket, lock, config errors, signals, and the runtime-info RPCs.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_NODE_FLAGS } from '../src/daemon/node-flags.js';
import { adminServiceDefinition } from '../src/server/admin-service.js';
import { removeNetwork, spawnDaemon, startDaemon, waitFor, type TestDaemon } from '../test-support/daemon.js';

const run = promisify(execFile);

describe('crib daemon', () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon();
  });
  afterAll(async () => {
    await d?.cleanup();
  });

  it('answers Version like a CRI runtime', async () => {
    const v = await d.cri.runtime.Version({ version: '0.1.0' });
    expect(v.runtimeName).toBe('crib');
    expect(v.runtimeApiVersion).toBe('v1');
    expect(v.runtimeVersion).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('reports RuntimeReady and NetworkReady conditions, with verbose info on request', async () => {
    const s = await d.cri.runtime.Status({ verbose: true });
    const types = s.status.conditions.map((c: { type: string }) => c.type);
    expect(types).toEqual(['RuntimeReady', 'NetworkReady']);
    const info = JSON.parse(s.info.root);
    expect(info).toBe(d.root);
    expect(s.runtimeHandlers[0].name).toBe('');
    const terse = await d.cri.runtime.Status({ verbose: false });
    expect(terse.info).toEqual({});
  });

  it('tells kubelet its cgroup driver', async () => {
    const r = await d.cri.runtime.RuntimeConfig({});
    expect(r.linux.cgroupDriver).toBe('CGROUPFS');
  });

  it('answers CheckpointContainer for a container it does not have with NOT_FOUND', async () => {
    // The last RPC that answered UNIMPLEMENTED (critest/checkpoint.test.ts tests the rest).
    await expect(d.cri.runtime.CheckpointContainer({ containerId: 'x', location: '/tmp/crib-no-such-container.tar' })).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
  });

  it('serves crib\'s admin service through the same RPC wrapper: malformed input is INVALID_ARGUMENT', async () => {
    // Raw bytes on the wire, as a client that is not crib's CLI could send them.
    const raw = { ImportImage: { ...adminServiceDefinition.ImportImage, requestSerialize: (b: Buffer) => b } };
    const Client = grpc.makeGenericClientConstructor(raw, 'Admin');
    const client = new Client(`unix://${d.socket}`, grpc.credentials.createInsecure()) as unknown as {
      ImportImage(req: Buffer, cb: (err: grpc.ServiceError | null) => void): void;
      close(): void;
    };
    const call = (body: string) => new Promise<void>((resolve, reject) =>
      client.ImportImage(Buffer.from(body), (err) => (err ? reject(err) : resolve())));
    try {
      await expect(call('not json')).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/ImportImage: the request is not JSON/) });
      for (const body of ['{"path":"relative/image.tar"}', 'null', '[]']) {
        await expect(call(body)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/ImportImage: path must be an absolute path/) });
      }
    } finally {
      client.close();
    }
  });

  it('runs with its Node flags and one malloc arena, started as a plain `node cli.js daemon`', () => {
    const pid = d.proc.pid!;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    for (const flag of DAEMON_NODE_FLAGS) expect(argv).toContain(flag);
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain('MALLOC_ARENA_MAX=1');
    // A thread's arena is a heap glibc maps 64 MiB-aligned and 64 MiB long: its used part
    // read-write, the rest reserved without access. V8's background threads and libuv's pool
    // had four of them in a daemon just started.
    const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n').map((line) => {
      const [range, perms, , , inode] = line.split(/\s+/);
      const [start, end] = range!.split('-').map((x) => BigInt(`0x${x}`));
      return { start: start!, end: end!, perms: perms!, anonymous: inode === '0' };
    });
    const HEAP = 64n << 20n;
    const arenas = maps.filter((m, i) => {
      const rest = maps[i + 1];
      return m.anonymous && m.perms === 'rw-p' && m.start % HEAP === 0n && rest?.anonymous && rest.perms === '---p' &&
        rest.start === m.end && rest.end === m.start + HEAP;
    });
    expect(arenas.map((m) => m.start.toString(16))).toEqual([]);
  });

  it("runs V8's worker threads as SCHED_BATCH, and its other threads at the normal policy", () => {
    const pid = d.proc.pid!;
    // /proc/<tid>/stat field 41: the thread's policy (SCHED_OTHER 0, SCHED_BATCH 3).
    const policy = (tid: string) => Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[38]);
    const threads = readdirSync(`/proc/${pid}/task`).map((tid) => ({ tid, policy: policy(tid) }));
    const poolSize = Number(DAEMON_NODE_FLAGS.find((f) => f.startsWith('--v8-pool-size='))!.split('=')[1]);
    expect(threads.filter((t) => t.policy === 3)).toHaveLength(poolSize);
    expect(threads.find((t) => t.tid === String(pid))!.policy).toBe(0);
    expect(threads.filter((t) => t.policy !== 0 && t.policy !== 3)).toEqual([]);
  });

  it('serves its socket with mode 0660', () => {
    expect(statSync(d.socket).mode & 0o777).toBe(0o660);
  });

  it('refuses to start a second daemon on the same root', async () => {
    const other = spawnDaemon(['--config', d.configPath, '--listen', `unix://${join(d.dir, 'other.sock')}`]);
    expect(await other.exited).toBe(1);
    expect(other.output()).toMatch(/another crib daemon is already running with root/);
    expect(existsSync(join(d.dir, 'other.sock.lock'))).toBe(false);
  });

  it('refuses to take over the socket of a live daemon, having created nothing', async () => {
    // B has its own root, state, bridge and nftables table; only the socket is A's.
    const b = join(d.dir, 'b');
    const bridge = 'cribtrefused';
    const config = join(d.dir, 'b.toml');
    await writeFile(config, `root = "${b}/root"\nstate = "${b}/state"\n[grpc]\naddress = "unix://${d.socket}"\n` +
      `[network]\nbridge = "${bridge}"\npod_cidr = "10.199.77.0/24"\nnft_table = "${bridge}"\n`);
    const other = spawnDaemon(['--config', config]);
    try {
      expect(await other.exited).toBe(1);
      expect(existsSync(`/sys/class/net/${bridge}`)).toBe(false);
      const tables = await run('nft', ['list', 'tables']);
      expect(tables.stdout).not.toMatch(new RegExp(`\\b${bridge}\\b`));
      expect(existsSync(b)).toBe(false);
      expect(other.output()).toContain(`${d.socket} is in use: another crib daemon is serving on it`);
      // ...and the first daemon still answers.
      await d.cri.runtime.Version({});
    } finally {
      await removeNetwork(bridge, bridge);
    }
  });

  it('refuses to take over a socket another program serves on', async () => {
    const sock = join(d.dir, 'foreign.sock');
    const foreign = createServer(() => undefined);
    await new Promise<void>((resolve) => foreign.listen(sock, resolve));
    try {
      const other = spawnDaemon(['--config', d.configPath, '--listen', `unix://${sock}`, '--root', join(d.dir, 'root3'), '--state', join(d.dir, 'state3')]);
      expect(await other.exited).toBe(1);
      expect(other.output()).toMatch(/foreign\.sock is in use: another process is serving on it/);
      expect(existsSync(join(d.dir, 'root3'))).toBe(false);
      expect(existsSync(`${sock}.lock`)).toBe(false);
    } finally {
      await new Promise<void>((resolve) => foreign.close(() => resolve()));
    }
  });
});

describe('crib daemon lifecycle', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'crib-life-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stops cleanly on SIGTERM and removes its socket', async () => {
    const d = await startDaemon({ dir: join(dir, 'a') });
    expect(await d.stop('SIGTERM')).toBe(0);
    expect(existsSync(d.socket)).toBe(false);
    await removeNetwork(d.bridge, d.nftTable);
  });

  it('replaces the stale socket of a killed daemon and takes over its root', async () => {
    const first = await startDaemon({ dir: join(dir, 'b') });
    await first.stop('SIGKILL');
    expect(existsSync(first.socket)).toBe(true);
    const second = await startDaemon({ dir: join(dir, 'b') });
    await second.cri.runtime.Version({});
    expect(await second.stop('SIGINT')).toBe(0);
    await removeNetwork(second.bridge, second.nftTable);
  });

  it('fails to start on an unknown config key and names it', async () => {
    const config = join(dir, 'bad.toml');
    await writeFile(config, `root = "${dir}/r"\n[grpc]\nadress = "unix://${dir}/x.sock"\n`);
    const d = spawnDaemon(['--config', config]);
    expect(await d.exited).toBe(1);
    expect(d.output()).toMatch(/unknown key "grpc.adress"/);
  });

  it('fails to start when the streaming port is taken, naming the address and the config keys', async () => {
    // Listening at start, not at the first kubectl exec: a node that cannot stream says so where
    // the operator looks (the streaming server's connection handling still loads on first use).
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    const bridge = 'cribsport0';
    const table = 'cribsport';
    const config = join(dir, 'sport.toml');
    await writeFile(config, `root = "${dir}/sr"\nstate = "${dir}/ss"\n[grpc]\naddress = "unix://${dir}/sport.sock"\n` +
      `[network]\nbridge = "${bridge}"\nnft_table = "${table}"\npod_cidr = "10.251.8.0/24"\n[streaming]\nport = ${port}\n`);
    try {
      const d = spawnDaemon(['--config', config]);
      expect(await d.exited).toBe(1);
      expect(d.output()).toMatch(new RegExp(`streaming server could not listen on 127\\.0\\.0\\.1:${port} \\(streaming\\.address, streaming\\.port\\): .*EADDRINUSE`));
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
      await removeNetwork(bridge, table);
    }
  });

  it('a SIGTERM while the daemon is still starting stops it cleanly once start has settled', async () => {
    const sock = join(dir, 'early.sock');
    const bridge = 'cribearly0';
    const table = 'cribearly';
    const config = join(dir, 'early.toml');
    await writeFile(config, `root = "${dir}/er"\nstate = "${dir}/es"\n[grpc]\naddress = "unix://${sock}"\n` +
      `[network]\nbridge = "${bridge}"\nnft_table = "${table}"\npod_cidr = "10.251.7.0/24"\n`);
    const d = spawnDaemon(['--config', config]);
    try {
      // The root appears at the very start of Daemon.start, long before the socket does.
      await waitFor('root dir', () => existsSync(join(dir, 'er')), 20_000);
      d.proc.kill('SIGTERM');
      expect(await d.exited).toBe(0);
      expect(existsSync(sock)).toBe(false);
    } finally {
      await removeNetwork(bridge, table);
    }
  });

  it('runs with no config file at all, on built-in defaults', async () => {
    // An explicit --listen/--root keeps the test away from the real /run/crib.
    // The default network (crib0, table crib) is removed afterwards unless it was here before.
    const hadBridge = existsSync('/sys/class/net/crib0');
    const sock = join(dir, 'defaults.sock');
    const d = spawnDaemon(['--listen', `unix://${sock}`, '--root', join(dir, 'dr'), '--state', join(dir, 'ds')]);
    await waitFor('socket', () => existsSync(sock));
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    if (!hadBridge) await removeNetwork('crib0', 'crib');
  });
});
