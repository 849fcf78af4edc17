// The daemon must not load, at start, the libraries only some nodes need (sys/lazy-module.ts), nor
// anything it only needs to build itself: each costs resident memory for the daemon's whole life.
// The first test imports the built daemon the way `crib daemon` does; the second starts a real
// daemon and asks it, once it serves, which CommonJS files it has loaded; the third pulls an image
// first: the registry client's HTTP is Node's own (registry-http.ts), undici was 10-12 MiB kept
// from the first pull on, and must not come back. No test loads @grpc/grpc-js: the daemon serves
// gRPC with its own server on its own HTTP/2 connection (server/grpc-server.ts); grpc-js cost it
// ~11 MiB and most of each call's CPU. Node's own modules that only some calls need (https, tls,
// worker_threads) are loaded by the first of them too, and the daemon runs without WebAssembly
// (daemon/node-flags.ts): the last test asks a daemon that has served, then pulled. (The CLI and the tests keep grpc-js as their client.) The config's
// parsers (smol-toml, zod) run before the daemon re-executes itself and never in the daemon
// (daemon/config-handoff.ts); zod loads again only with a CDI spec to check. The daemon is a bundle
// (deploy/bundle-daemon.mjs): which of crib's own modules it has loaded is read from the source
// maps of the bundle's files it loaded (each lists the TypeScript modules in it), and the first
// test imports the daemon module as tsc compiled it, before bundling.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startDaemon, waitFor } from '../../test-support/daemon.js';
import { pushBusybox } from '../../test-support/image-builder.js';
import { startRegistry } from '../../test-support/registry.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Packages only some nodes need, loaded on first use. */
const LAZY = ['undici', 'ws', 'tar-stream', 'yaml', 'prom-client', 'commander', 'cli-table3', 'cli-progress'];
/** What reads and checks the config file: used before the daemon's re-exec, not in the daemon. */
const CONFIG_PARSERS = ['smol-toml', 'zod'];
/** Node's own modules an idle daemon has no use for (sys/lazy-module.ts): https (with tls) serves
 * streaming only with a certificate; worker_threads starts the unpack threads of a first pull. */
const LAZY_BUILTINS = ['https', 'tls', 'worker_threads'];
/** Never loaded by the daemon, even once it has served and pulled. */
const NEVER = ['undici', '@grpc/grpc-js'];
/** What builds the CRI's gRPC services from api.proto: done at build time (src/gen/cri-descriptor.ts). */
const BUILD_ONLY = ['@grpc/proto-loader/', 'protobufjs/src/parse.js', 'protobufjs/src/tokenize.js'];

/**
 * crib's own modules the daemon loads on the first call that needs them: the registry client (and
 * with it its HTTP, auth and transport) with the first pull (a node whose images are all present
 * pulls nothing after a restart).
 */
const OWN_ON_FIRST_USE = ['src/image/registry/client.ts', 'src/image/registry/registry-http.ts'];

/** crib's own TypeScript modules (relative to the repository) in the bundle's files among `loaded`. */
function ownModules(loaded: string[]): Set<string> {
  const own = new Set<string>();
  const dist = join(REPO, 'dist');
  for (const f of loaded) {
    const path = f.startsWith('file:') ? fileURLToPath(f) : f;
    if (!path.startsWith(`${dist}/`) || !path.endsWith('.js')) continue;
    const map = JSON.parse(readFileSync(`${path}.map`, 'utf8')) as { sources: string[] };
    for (const s of map.sources) own.add(relative(REPO, resolve(dirname(path), s)));
  }
  return own;
}

/** For each name, whether a loaded CommonJS file's path contains node_modules/<name>. */
function which(loaded: string[], names: string[]): Record<string, boolean> {
  return Object.fromEntries(names.map((n) => [n, loaded.some((k) => k.includes(`/node_modules/${n.endsWith('.js') || n.endsWith('/') ? n : `${n}/`}`))]));
}

function loadedBy(modulePath: string): string[] {
  const script = `
    await import(${JSON.stringify(modulePath)});
    const { createRequire } = await import('node:module');
    console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));
  `;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
}

describe('the daemon at start', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('loads neither grpc-js nor the registry HTTP stack, WebSocket, tar, YAML, metrics or CLI libraries', () => {
    const loaded = which(loadedBy(join(REPO, 'build', 'tsc', 'daemon', 'daemon.js')), ['@grpc/grpc-js', ...LAZY]);
    expect(loaded).toEqual({ '@grpc/grpc-js': false, ...Object.fromEntries(LAZY.map((n) => [n, false])) });
  });

  /** Runs a daemon through `calls`, then lists every CommonJS file and ES module it had loaded. */
  async function loadedByDaemon(calls: (d: Awaited<ReturnType<typeof startDaemon>>) => Promise<void>): Promise<string[]> {
    const dir = await mkdtemp(join(tmpdir(), 'crib-lazy-'));
    dirs.push(dir);
    const probe = join(dir, 'probe.cjs');
    const hooks = join(dir, 'hooks.mjs');
    const out = join(dir, 'loaded.json');
    // ES modules (zod, smol-toml, crib's own) are in no require.cache: a module loader hook, which
    // Node runs on a thread of its own, posts each one's URL to the main thread.
    await writeFile(hooks, `let port;\nexport function initialize(data) { port = data.port; }\n` +
      `export async function load(url, context, next) { port.postMessage(url); return next(url, context); }\n`);
    // Preloaded into the daemon: on exit (SIGTERM ends it with process.exit), write every
    // CommonJS file and ES module it has loaded. Only the main thread's: the unpack pool's worker
    // threads have their own module caches and end with their work. The process before the
    // daemon's re-exec (same pid) never exits: execve replaces it, list and all.
    await writeFile(probe, `const { isMainThread, MessageChannel } = require('node:worker_threads');
if (isMainThread) {
  const esm = [];
  const { port1, port2 } = new MessageChannel();
  port1.on('message', (url) => esm.push(url));
  port1.unref();
  require('node:module').register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { port: port2 }, transferList: [port2] });
  process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify([...Object.keys(require.cache), ...esm])));
}
`);
    const d = await startDaemon({ logLevel: 'warn', env: { NODE_OPTIONS: `--require ${probe}` } });
    try {
      await calls(d);
    } finally {
      await d.cleanup();
    }
    return JSON.parse(await readFile(out, 'utf8')) as string[];
  }

  it('serves the CRI without having loaded grpc-js, the .proto parser, proto-loader, the config parsers or any lazy library', async () => {
    const files = await loadedByDaemon(async (d) => {
      // Calls that use the CRI's messages in both directions, so the services are built.
      expect((await d.cri.runtime.Version({})).runtimeName).toBe('crib');
      expect((await d.cri.runtime.ListPodSandbox({})).items).toEqual([]);
      expect((await d.cri.image.ListImages({})).images).toEqual([]);
    });
    const loaded = which(files, ['@grpc/grpc-js', 'protobufjs', ...BUILD_ONLY, ...LAZY, ...CONFIG_PARSERS]);
    expect(loaded).toEqual({
      '@grpc/grpc-js': false,
      // What the daemon does load, as CommonJS and as an ES module: the lists are complete.
      protobufjs: true,
      ...Object.fromEntries([...BUILD_ONLY, ...LAZY, ...CONFIG_PARSERS].map((n) => [n, false])),
    });
    const own = ownModules(files);
    expect(own.has('src/daemon/daemon.ts')).toBe(true);
    // crib's own modules that only some RPCs need, loaded by the first of them.
    expect(OWN_ON_FIRST_USE.filter((m) => own.has(m))).toEqual([]);
  });

  it('pulls from a registry without loading undici or grpc-js', async () => {
    const registry = await startRegistry();
    try {
      await pushBusybox(registry, 'library/busybox', 'latest');
      const files = await loadedByDaemon(async (d) => {
        // A real pull: the registry client's every request (manifest, config, layer) went out.
        await d.cri.image.PullImage({ image: { image: `${registry.host}/library/busybox:latest` } });
        expect((await d.cri.image.ListImages({})).images).toHaveLength(1);
      });
      expect(which(files, NEVER)).toEqual(Object.fromEntries(NEVER.map((n) => [n, false])));
      // The probe sees them once a pull has used them.
      const own = ownModules(files);
      expect(OWN_ON_FIRST_USE.filter((m) => own.has(m))).toEqual(OWN_ON_FIRST_USE);
    } finally {
      await registry.stop();
    }
  });

  it('runs without WebAssembly, and loads https, tls and worker_threads only when a call needs them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crib-lazy-'));
    dirs.push(dir);
    const probe = join(dir, 'builtins.cjs');
    const out = join(dir, 'builtins.json');
    // Preloaded into the daemon, loading nothing itself (the probe above registers loader hooks,
    // which run on a worker thread): on SIGUSR2, and on exit, it writes Node's own modules the
    // daemon's main thread has loaded so far, and whether it could run WebAssembly. Its worker
    // threads (a worker's arguments are its entry module's only) write nothing.
    await writeFile(probe, `if (process.argv.includes('daemon')) {
  const write = (at) => require('node:fs').writeFileSync(${JSON.stringify(out)} + '.' + at, JSON.stringify({
    builtins: process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length)),
    webAssembly: typeof WebAssembly,
  }));
  process.on('SIGUSR2', () => write('served'));
  process.on('exit', () => write('exit'));
}
`);
    const read = async (at: string) => JSON.parse(await readFile(`${out}.${at}`, 'utf8')) as { builtins: string[]; webAssembly: string };
    const registry = await startRegistry();
    try {
      await pushBusybox(registry, 'library/busybox', 'latest');
      const d = await startDaemon({ logLevel: 'warn', env: { NODE_OPTIONS: `--require ${probe}` } });
      try {
        expect((await d.cri.runtime.ListPodSandbox({})).items).toEqual([]);
        expect((await d.cri.image.ListImages({})).images).toEqual([]);
        process.kill(d.proc.pid!, 'SIGUSR2');
        await waitFor('the probe\'s list of the serving daemon', () => read('served').catch(() => undefined), 5000);
        await d.cri.image.PullImage({ image: { image: `${registry.host}/library/busybox:latest` } });
      } finally {
        await d.cleanup();
      }
      const served = await read('served');
      const loaded = (b: string[]) => Object.fromEntries(LAZY_BUILTINS.map((n) => [n, b.includes(n)]));
      expect(loaded(served.builtins)).toEqual(Object.fromEntries(LAZY_BUILTINS.map((n) => [n, false])));
      // The list is complete: what it serves with is in it.
      expect(served.builtins).toContain('http');
      expect(served.webAssembly).toBe('undefined');
      // The first pull loads what it needs (the registry client's https, the unpack threads).
      const pulled = await read('exit');
      expect(loaded(pulled.builtins)).toEqual(Object.fromEntries(LAZY_BUILTINS.map((n) => [n, true])));
      expect(pulled.webAssembly).toBe('undefined');
    } finally {
      await registry.stop();
    }
  });
});
