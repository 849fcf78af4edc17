// Which way imports may go. The product (every file under src/ that the build compiles) never
// imports test support, tests, benchmarks or test helpers: what ships must not depend on what
// only tests need. The folders of src/ are layers, each importing only the layers LAYERS lets it
// (a graph without cycles: image/ may use snapshot/, never the reverse; config/ imports nothing
// above it). The RPC modules of src/server/ never import each other: what two of them share lives
// in a module of its own (cri-messages.ts, rpc.ts, ...). And RPC handlers and the streaming server
// use the services' methods, never their stores or collaborators.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(REPO, 'src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Test code living beside the product: test files and helpers named test-*.ts. */
const isTestCode = (file: string): boolean => /\.test\.ts$/.test(file) || /(^|\/)test-[^/]*\.ts$/.test(file);

/** Repository paths (no extension) a file imports through relative specifiers. */
function relativeImports(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => relative(REPO, resolve(dirname(file), spec)).replace(/\.js$/, ''));
}

/**
 * The layers of src/ and what each may import, lowest first. `base` is the files directly in
 * src/ (errors, log, time, ...) and the generated CRI types (gen/); cli.ts is the program.
 * Every layer may import base and itself.
 */
const LAYERS: Record<string, string[]> = {
  base: [],
  sys: [],
  digest: [],
  store: ['sys'],
  lifecycle: [],
  config: [],
  runtime: ['sys', 'lifecycle'],
  snapshot: ['sys', 'digest', 'store', 'lifecycle'],
  network: ['sys', 'config', 'store', 'lifecycle'],
  stats: ['sys', 'network'],
  image: ['sys', 'digest', 'store', 'lifecycle', 'config', 'snapshot'],
  sandbox: ['sys', 'store', 'lifecycle', 'network'],
  container: ['sys', 'store', 'lifecycle', 'runtime', 'snapshot', 'image', 'sandbox'],
  streaming: ['sys', 'config', 'runtime', 'container', 'sandbox'],
  server: ['config', 'runtime', 'network', 'stats', 'image', 'sandbox', 'container', 'streaming'],
  metrics: ['image'],
  daemon: ['sys', 'store', 'config', 'runtime', 'snapshot', 'network', 'image', 'sandbox', 'container', 'streaming', 'server', 'metrics'],
  client: ['server', 'streaming'],
  kube: ['store', 'config', 'client'],
  cli: ['config', 'daemon', 'server', 'client', 'kube'],
};

/** The layer of a repository path under src/ (no extension). */
function layerOf(path: string): string {
  const rel = relative('src', path);
  if (rel === 'cli') return 'cli';
  const top = rel.split('/')[0]!;
  if (!rel.includes('/') || top === 'gen' || top === 'types') return 'base';
  return top;
}

/**
 * Members of the services that are theirs alone: record stores and the stores they own
 * (ContainerService/SandboxService's records, ImageService's content store and snapshotter).
 */
const SERVICE_INTERNALS = new Set(['store', 'records', 'content', 'snapshots']);

const productFiles = tsFiles(SRC).filter((f) => !isTestCode(relative(REPO, f)) && !relative(SRC, f).startsWith('gen/'));

describe('module boundaries', () => {
  it('finds the product files and their imports', () => {
    expect(productFiles.length).toBeGreaterThan(100);
    expect(relativeImports(join(SRC, 'daemon', 'daemon.ts'))).toContain('src/server/cri-server');
  });

  it('the product imports no test support, tests, benchmarks or test helpers', () => {
    const outside = ['test-support/', 'root-test/', 'critest/', 'bench/', 'native/test/'];
    const bad: string[] = [];
    for (const file of productFiles) {
      for (const target of relativeImports(file)) {
        if (outside.some((dir) => target.startsWith(dir)) || isTestCode(`${target}.ts`)) bad.push(`${relative(REPO, file)} imports ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the RPC modules of src/server/ do not import each other', () => {
    const rpcs = productFiles.filter((f) => /\/src\/server\/[^/]+-rpcs\.ts$/.test(f));
    expect(rpcs.map((f) => relative(SRC, f))).toEqual(expect.arrayContaining(['server/container-rpcs.ts', 'server/pod-sandbox-rpcs.ts']));
    const bad: string[] = [];
    for (const file of rpcs) {
      for (const target of relativeImports(file)) if (/^src\/server\/[^/]+-rpcs$/.test(target)) bad.push(`${relative(REPO, file)} imports ${target}`);
    }
    expect(bad).toEqual([]);
  });

  it('each layer imports only the layers below it, and the layers form no cycle', () => {
    const layers = new Set(productFiles.map((f) => layerOf(relative(REPO, f).replace(/\.ts$/, ''))));
    expect([...layers].filter((l) => !(l in LAYERS))).toEqual([]);
    const bad: string[] = [];
    for (const file of productFiles) {
      const from = layerOf(relative(REPO, file).replace(/\.ts$/, ''));
      for (const target of relativeImports(file)) {
        if (!target.startsWith('src/')) continue;
        const to = layerOf(target);
        if (to !== from && to !== 'base' && !LAYERS[from]!.includes(to)) bad.push(`${relative(REPO, file)} (${from}) imports ${target} (${to})`);
      }
    }
    expect(bad).toEqual([]);
    // Acyclic: peel off layers whose allowed imports are all peeled already.
    const done = new Set(['base']);
    let progress = true;
    while (progress) {
      progress = false;
      for (const [layer, deps] of Object.entries(LAYERS)) {
        if (!done.has(layer) && deps.every((d) => done.has(d))) {
          done.add(layer);
          progress = true;
        }
      }
    }
    expect(Object.keys(LAYERS).filter((l) => !done.has(l))).toEqual([]);
  });

  it('config/ takes its defaults from no layer above it, and snapshot/ knows nothing of image/', () => {
    expect(layerOf('src/errors')).toBe('base');
    expect(layerOf('src/cli')).toBe('cli');
    expect(LAYERS.config).toEqual([]);
    expect(LAYERS.snapshot).not.toContain('image');
    const configImports = tsFiles(join(SRC, 'config')).filter((f) => !isTestCode(f)).flatMap(relativeImports);
    expect(configImports).toContain('src/config/limit-defaults');
    expect(configImports.filter((t) => !['config', 'base'].includes(layerOf(t)))).toEqual([]);
  });

  it('RPC handlers and the streaming server use service methods, not their stores or collaborators', () => {
    const callers = productFiles.filter((f) => /\/src\/(server|streaming)\//.test(f));
    const bad: string[] = [];
    for (const file of callers) {
      const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        // `x.store`, `x.snapshots`, ... on anything but `this` (a class's own fields are its own).
        if (ts.isPropertyAccessExpression(node) && SERVICE_INTERNALS.has(node.name.text) && node.expression.kind !== ts.SyntaxKind.ThisKeyword) {
          const { line } = source.getLineAndCharacterOfPosition(node.getStart());
          bad.push(`${relative(REPO, file)}:${line + 1}: ${node.getText()}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    expect(bad).toEqual([]);
  });
});
