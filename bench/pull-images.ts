// The images the pull benchmarks (bench/pull.ts, bench/pull-ab.ts) pull:
//   synthetic   ~100 MB in 5 layers of 256 KiB random files (the original bench image)
//   realistic   ~100 MB in 6 layers: base OS, packages, runtime, dependencies (thousands of small
//               files), a cleanup layer of whiteouts and an opaque dir, the app
//               (test-support/image-builder.ts realisticImageLayers)
import { randomBytes } from 'node:crypto';
import {
  buildImage, layerFromEntries, realisticImageLayers, type BuiltImage, type TarEntry,
} from '../test-support/image-builder.js';

/** A layer of many files of random (incompressible) bytes, like a real image's binaries. */
async function makeLayer(n: number, mb: number): Promise<Awaited<ReturnType<typeof layerFromEntries>>> {
  const entries: TarEntry[] = [{ type: 'dir', path: `layer${n}`, mode: 0o755 }];
  const fileSize = 256 * 1024;
  for (let i = 0; i < (mb * 1024 * 1024) / fileSize; i++) {
    entries.push({ type: 'file', path: `layer${n}/f${i}`, content: randomBytes(fileSize), mode: 0o644 });
  }
  return layerFromEntries(entries, 'gzip');
}

/** The bench image `name` of about `totalMb` MB compressed. */
export async function buildBenchImage(name: string, totalMb: number): Promise<BuiltImage> {
  if (name === 'synthetic') {
    const layers = [];
    for (let i = 0; i < 5; i++) layers.push(await makeLayer(i, totalMb / 5));
    return buildImage({ layers });
  }
  if (name === 'realistic') return buildImage({ layers: await realisticImageLayers({ mb: totalMb }) });
  throw new Error(`unknown bench image ${name} (synthetic, realistic)`);
}
