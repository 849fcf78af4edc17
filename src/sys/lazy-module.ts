// Libraries that only some nodes ever need — WebSocket streaming, OCI archive import, a pure-JS
// zstd decoder, YAML CDI specs — are loaded on first use, not when the daemon starts: each import costs resident memory on every node for the
// daemon's whole life, whether it is used or not (together about 12 MiB of an idle daemon's RSS). All of them are
// CommonJS packages, so a synchronous require keeps their callers synchronous. Node's own modules
// that only some calls need are loaded the same way, through the getters below.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A getter that loads `name` the first time it is called. */
export function lazyModule<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}

// Node's own modules an idle daemon has no use for. Loaded, https (with tls) and worker_threads
// cost about 0.6 MiB of resident memory together (measured in a bare Node 20 that had loaded
// http, net, crypto and zlib): https serves streaming only with a certificate, and
// worker_threads starts the unpack pool's threads at a first pull. (child_process is no such
// module: Node loads it for any server's listen, through its cluster support.)
export const https = lazyModule<typeof import('node:https')>('node:https');
/** Blob downloads from a registry over https (image/registry/blob-http.ts). */
export const tls = lazyModule<typeof import('node:tls')>('node:tls');
export const workerThreads = lazyModule<typeof import('node:worker_threads')>('node:worker_threads');
