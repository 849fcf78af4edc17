// Libraries that only some nodes ever need — WebSocket streaming, OCI archive import, a pure-JS
// zstd decoder, YAML CDI specs — are loaded on first use, not when the daemon starts: each import costs resident memory on every node for the
// daemon's whole life, whether it is used or not (together about 12 MiB of an idle daemon's RSS). All of them are
// CommonJS packages, so a synchronous require keeps their callers synchronous.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A getter that loads `name` the first time it is called. */
export function lazyModule<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}
