// The daemon must not load, at start, the libraries only some nodes need (sys/lazy-module.ts):
// each costs resident memory for the daemon's whole life. This imports the built daemon the way
// `crib daemon` does and looks at which CommonJS packages Node has loaded.
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function packagesLoadedBy(modulePath: string, packages: string[]): Record<string, boolean> {
  const script = `
    await import(${JSON.stringify(modulePath)});
    const { createRequire } = await import('node:module');
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    const names = ${JSON.stringify(packages)};
    console.log(JSON.stringify(Object.fromEntries(names.map((n) => [n, loaded.some((k) => k.includes('/node_modules/' + n + '/'))]))));
  `;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as Record<string, boolean>;
}

describe('the daemon at start', () => {
  it('loads gRPC but not the registry HTTP stack, WebSocket, tar, YAML, metrics or CLI libraries', () => {
    const lazy = ['undici', 'ws', 'tar-stream', 'yaml', 'prom-client', 'commander', 'cli-table3', 'cli-progress'];
    const loaded = packagesLoadedBy(join(REPO, 'dist', 'daemon', 'daemon.js'), ['@grpc/grpc-js', ...lazy]);
    expect(loaded).toEqual({ '@grpc/grpc-js': true, ...Object.fromEntries(lazy.map((n) => [n, false])) });
  });
});
