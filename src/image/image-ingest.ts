// Turning "a manifest and a way to open its blobs" into content and snapshots. Pull and import
// both end here, so an imported image is stored exactly as a pulled one. Layers are fetched and
// unpacked in parallel (each layer unpacks into its own overlay lower dir, independent of its
// parents), bounded by max_concurrent_downloads.
import type { Readable } from 'node:stream';
import { DataLossError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import type { ContentStore } from './content-store.js';
import { chainIds } from '../digest/chain-id.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import { ByteBudget, formatLimit, limitExceeded, type ImageLimits } from './limits.js';
import type { Descriptor } from './registry/types.js';
import { unpackLayer } from './unpack/unpack-layer.js';
import type { PullProgress } from './pull-progress.js';

export interface ImageSource {
  /** The image as messages name it: a reference, or an archive's tag or digest. */
  name: string;
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
  limits: ImageLimits;
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

/**
 * Refuse, before downloading anything, an image whose descriptors already say it is over a
 * limit. Compressed sizes are a lower bound of uncompressed ones for any layer worth the name
 * (gzip and zstd grow incompressible data by well under 1%), so a layer whose blob is already
 * over max_layer_size cannot unpack under it.
 */
function checkDeclaredSizes(source: ImageSource, limits: ImageLimits): void {
  const image = `image "${source.name}"`;
  const cfg = source.configDescriptor;
  if (cfg.size > limits.maxConfigBytes) {
    throw limitExceeded('maxConfigBytes', limits.maxConfigBytes, `the config blob of ${image} is ${formatLimit('maxConfigBytes', cfg.size)}`);
  }
  if (source.layers.length > limits.maxLayers) {
    throw limitExceeded('maxLayers', limits.maxLayers, `${image} has ${source.layers.length} layers`);
  }
  let total = 0;
  for (const layer of source.layers) {
    if (layer.size > limits.maxLayerBytes) {
      throw limitExceeded('maxLayerBytes', limits.maxLayerBytes,
        `layer ${layer.digest} of ${image} is ${formatLimit('maxLayerBytes', layer.size)} compressed`);
    }
    total += layer.size;
  }
  if (total > limits.maxImageBytes) {
    throw limitExceeded('maxImageBytes', limits.maxImageBytes, `the layers of ${image} are ${formatLimit('maxImageBytes', total)} compressed`);
  }
}

export async function ingestImage(
  deps: IngestDeps,
  source: ImageSource,
  opts: { signal?: AbortSignal; lease: (what: string) => void; progress?: PullProgress },
): Promise<IngestedImage> {
  const { content, snapshots, limits } = deps;
  const configDesc = source.configDescriptor;
  checkDeclaredSizes(source, limits);
  opts.lease(configDesc.digest);
  await content.ingest(configDesc, () => source.openBlob(configDesc), { signal: opts.signal });
  const configBytes = await content.readBytes(configDesc.digest);
  const config = parseImageConfig(configBytes, configDesc.digest, source.layers.length);
  const diffIds = config.rootfs.diff_ids;
  const chains = chainIds(diffIds);
  chains.forEach((c) => opts.lease(c));
  source.layers.forEach((l) => opts.lease(l.digest));
  // Layers already on the node count with the size their snapshot recorded; the others count
  // their uncompressed bytes as they unpack, all layers against one budget.
  const imageBudget = new ByteBudget('maxImageBytes', limits.maxImageBytes, `image "${source.name}" unpacks to`);
  const counted = new Set<number>();
  chains.forEach((c, i) => {
    const have = snapshots.get(c);
    if (have) {
      counted.add(i);
      imageBudget.add(have.size);
    }
  });

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
      if (snapshots.has(chainId)) {
        opts.progress?.layerState(i, 'present');
      } else {
        const started = Date.now();
        const blobPath = await content.ingest(layer, () => source.openBlob(layer), {
          signal,
          onProgress: opts.progress && ((n) => opts.progress!.layerBytes(i, n)),
        });
        opts.progress?.layerState(i, 'unpacking');
        if (i > 0) await committed[i - 1];
        let unpackedHere = false;
        const snap = await snapshots.ensureLayer(chainId, i === 0 ? undefined : chains[i - 1], async (dir) => {
          unpackedHere = true;
          // The content store verified the blob's digest: an uncompressed layer's diffID is that.
          const { diffId, fileBytes } = await unpackLayer(blobPath, dir, {
            signal,
            blobDigest: layer.digest,
            what: `layer ${layer.digest} of image "${source.name}"`,
            maxBytes: limits.maxLayerBytes,
            maxEntries: limits.maxLayerEntries,
            budget: imageBudget,
          });
          if (diffId !== diffIds[i]) {
            throw new DataLossError(
              `layer ${layer.digest} unpacks to ${diffId}, but the image config says diff_id ${diffIds[i]}`,
            );
          }
          return { diffId, size: fileBytes };
        });
        // Another pull unpacked this layer while we waited: count what it recorded.
        if (!unpackedHere && !counted.has(i)) imageBudget.add(snap.size);
        deps.log.debug({ layer: layer.digest, size: layer.size, ms: Date.now() - started }, 'layer ready');
        opts.progress?.layerState(i, 'done');
      }
      settle[i]!();
    } catch (err) {
      settle[i]!(err);
      throw err;
    }
  });
  return { config, configBytes, diffIds, chainIds: chains };
}
