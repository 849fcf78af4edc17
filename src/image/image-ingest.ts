// Turning "a manifest and a way to open its blobs" into content and snapshots. Pull and import
// both end here, so an imported image is stored exactly as a pulled one. Layers are fetched and
// unpacked in parallel (each layer unpacks into its own overlay lower dir, independent of its
// parents), bounded by max_concurrent_downloads.
import type { Readable } from 'node:stream';
import { DataLossError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import type { ContentStore } from './content-store.js';
import { chainIds } from '../snapshot/chain-id.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import type { Descriptor } from './registry/types.js';
import { unpackLayer } from './unpack/unpack-layer.js';

export interface ImageSource {
  configDescriptor: Descriptor;
  layers: Descriptor[];
  openBlob(desc: Descriptor): Promise<Readable>;
}

export interface IngestedImage {
  config: ImageConfig;
  configBytes: Buffer;
  diffIds: string[];
  chainIds: string[];
}

export interface IngestDeps {
  content: ContentStore;
  snapshots: Snapshotter;
  concurrency: number;
  log: Logger;
}

/**
 * Run fn over items with at most `limit` in flight. The first failure aborts the others through
 * `abort`, and we wait for all of them to settle before rethrowing, so that no download is still
 * writing a temp file when the caller cleans up.
 */
async function boundedAll<T>(items: T[], limit: number, abort: AbortController, signal: AbortSignal,
  fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const i = next++;
      try {
        signal.throwIfAborted();
        await fn(items[i]!, i);
      } catch (err) {
        failure ??= { err };
        abort.abort(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
}

export async function ingestImage(
  deps: IngestDeps,
  source: ImageSource,
  opts: { signal?: AbortSignal; lease: (what: string) => void },
): Promise<IngestedImage> {
  const { content, snapshots } = deps;
  const configDesc = source.configDescriptor;
  opts.lease(configDesc.digest);
  await content.ingest(configDesc, () => source.openBlob(configDesc), { signal: opts.signal });
  const configBytes = await content.readBytes(configDesc.digest);
  const config = parseImageConfig(configBytes, configDesc.digest, source.layers.length);
  const diffIds = config.rootfs.diff_ids;
  const chains = chainIds(diffIds);
  chains.forEach((c) => opts.lease(c));
  source.layers.forEach((l) => opts.lease(l.digest));

  // One failing layer stops the others: their downloads are aborted rather than left running.
  // Downloads run in parallel; each layer commits once its parent has (a snapshot names its
  // parent), so unpacking overlaps the downloads still under way.
  const failFast = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, failFast.signal]) : failFast.signal;
  const committed: Promise<void>[] = [];
  const settle: ((err?: unknown) => void)[] = [];
  for (let i = 0; i < chains.length; i++) {
    committed.push(new Promise<void>((resolve, reject) => {
      settle.push((err?: unknown) => (err === undefined ? resolve() : reject(err)));
    }));
    committed[i]!.catch(() => undefined);
  }
  await boundedAll(source.layers, deps.concurrency, failFast, signal, async (layer, i) => {
    try {
      const chainId = chains[i]!;
      if (!snapshots.has(chainId)) {
        const started = Date.now();
        const blobPath = await content.ingest(layer, () => source.openBlob(layer), { signal });
        if (i > 0) await committed[i - 1];
        await snapshots.ensureLayer(chainId, i === 0 ? undefined : chains[i - 1], async (dir) => {
          // The content store verified the blob's digest: an uncompressed layer's diffID is that.
          const { diffId, fileBytes } = await unpackLayer(blobPath, dir, { signal, blobDigest: layer.digest });
          if (diffId !== diffIds[i]) {
            throw new DataLossError(
              `layer ${layer.digest} unpacks to ${diffId}, but the image config says diff_id ${diffIds[i]}`,
            );
          }
          return { diffId, size: fileBytes };
        });
        deps.log.debug({ layer: layer.digest, size: layer.size, ms: Date.now() - started }, 'layer ready');
      }
      settle[i]!();
    } catch (err) {
      settle[i]!(err);
      throw err;
    }
  });
  return { config, configBytes, diffIds, chainIds: chains };
}
