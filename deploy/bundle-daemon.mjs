// Bundles the daemon that tsc compiled into build/tsc/ as dist/cli.js and its chunks (run by
// `npm run build:ts`; dist/ holds nothing else). Why: V8 keeps every module's source text for
// lazy compilation, and each module costs records of its own, so one bundle with whitespace and
// syntax minified made a freshly started daemon 2.5 MiB smaller (RSS 58.0 -> 55.5 MiB,
// anonymous 18.1 -> 15.6; three starts each, alternated). Names are kept, so stack traces and
// profiles stay readable, and the source map leads back to the TypeScript. The packages in
// node_modules stay outside, loaded as before. The modules the daemon imports late, to load
// rare features only when used, stay chunks of their own (dist/chunks/).
//
// The unpack worker (image/unpack/unpack-worker.ts) is a bundle of its own, CommonJS, with no
// chunks: dist/image/unpack/unpack-worker.cjs, where unpack-pool.ts starts it from. A pull starts
// its threads when it begins (up to three), and a node pulls now and then, so every pull after
// 10 s of quiet waits for them: as ES modules each thread first started Node's ES module loader
// and then loaded the entry's chunks, file by file. Three threads started together until each
// has answered a job (a syncfs of a tmpfs), median of 12, alternated, three runs on this
// project's 2-core machine: 117-119 ms of wall time and 222-226 ms of CPU as ES modules, 95-99 ms
// and 181-184 ms as this bundle.
// Its code that asks import.meta.url (the package root, the native addon, lazy requires) is
// given the bundle's own file URL.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: ['build/tsc/cli.js'],
  outdir: 'dist',
  outbase: 'build/tsc',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: 'chunks/[name]-[hash]',
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  sourcemap: true,
  logLevel: 'warning',
});
await build({
  entryPoints: ['build/tsc/image/unpack/unpack-worker.js'],
  outfile: 'dist/image/unpack/unpack-worker.cjs',
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  define: { 'import.meta.url': '__importMetaUrl' },
  banner: { js: "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  sourcemap: true,
  logLevel: 'warning',
});
