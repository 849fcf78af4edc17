// Which way imports may go. The product (every file under src/ that the build compiles) never
// imports test support, tests, benchmarks or test helpers: what ships must not depend on what
// only tests need. And the RPC modules of src/server/ never import each other: what two of them
// share lives in a module of its own (cri-messages.ts, rpc.ts, ...).
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
});
