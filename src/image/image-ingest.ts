// Turning "a manifest and a way to open its blobs" into content and snapshots. Pull and import
// both end here, so an imported image is stored exactly as a pulled one. Layers are fetched and
// unpacked in parallel, bounded by max_concurrent_downloads: each streams into an unpack thread
// as it downloads (the thread writes the blob file too), into its own staging dir (an overlay
// lower dir is independent of its parents), and the staged layers are committed as snapshots in
// chain order.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { DataLossError } from '../errors.js';
import { removeTree } from '../sys/remove-tree.js';
import type { Logger } from '../log.js';
import type { SnapshotFlush } from '../snapshot/snapshot-flush.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import type { ContentStore } from './content-store.js';
import { chainIds } from '../digest/chain-id.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import { ByteBudget, formatLimit, limitExceeded, type ImageLimits } from './limits.js';
import type { Descriptor } from './registry/types.js';
import type { LayerUnpack, UnpackPool } from './unpack/unpack-pool.js';
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
  /** Where layers unpack (worker threads). */
  unpackPool: UnpackPool;
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

export interface IngestOptions {
  signal?: AbortSignal;
  /** Keeps a blob or snapshot from garbage collection while the pull runs. */
  lease: (what: string) => void;
  progress?: PullProgress;
}

/**
 * Store an image's config and blobs and commit its layers as snapshots, flushed to disk: when it
 * returns, a record may point at them.
 */
export async function ingestImage(
  deps: IngestDeps,
  source: ImageSource,
  opts: IngestOptions,
): Promise<IngestedImage> {
  checkDeclaredSizes(source, deps.limits);
  // Opened before the first write: it hears of every write error since (snapshot-flush.ts).
  const flush = await deps.snapshots.openFlush();
  try {
    const ingested = await storeLayers(deps, source, opts, flush);
    const flushStarted = Date.now();
    // Layers another pull unpacked are waited for until that pull's flush vouches for them.
    await flush.flush(ingested.chainIds);
    if (opts.progress) opts.progress.flushMs = Date.now() - flushStarted;
    return ingested;
  } finally {
    await flush.close();
  }
}

async function storeLayers(
  deps: IngestDeps,
  source: ImageSource,
  opts: IngestOptions,
  flush: SnapshotFlush,
): Promise<IngestedImage> {
  const { content, snapshots, limits } = deps;
  const configDesc = source.configDescriptor;
  // Unpack threads start while the config downloads. With the config on the node already (a
  // re-pull: imagePullPolicy Always asks at every container start) it says first which layers
  // are missing, and an image whose layers are all here starts no thread (50 ms of CPU each).
  const configHere = await content.has(configDesc.digest);
  if (!configHere) deps.unpackPool.warm(Math.min(source.layers.length, deps.concurrency));
  opts.lease(configDesc.digest);
  await content.ingest(configDesc, () => source.openBlob(configDesc), { signal: opts.signal });
  const configBytes = await content.readBytes(configDesc.digest);
  const config = parseImageConfig(configBytes, configDesc.digest, source.layers.length);
  const diffIds = config.rootfs.diff_ids;
  const chains = chainIds(diffIds);
  if (configHere) deps.unpackPool.warm(Math.min(chains.filter((c) => !snapshots.has(c)).length, deps.concurrency));
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
  // Each layer streams from the registry into an unpack thread as it downloads, into a staging
  // dir of its own: an overlay lower dir is self-contained, so no layer waits for its parent to
  // unpack. Only the commits follow the chain (a snapshot names its parent), in order, each as
  // soon as its layer and the one below are done.
  const failFast = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, failFast.signal]) : failFast.signal;
  const staged: Promise<StagedLayer | undefined>[] = [];
  const settle: ((s: StagedLayer | undefined, err?: unknown) => void)[] = [];
  for (let i = 0; i < chains.length; i++) {
    staged.push(new Promise<StagedLayer | undefined>((resolve, reject) => {
      settle.push((s, err) => (err === undefined ? resolve(s) : reject(err)));
    }));
    staged[i]!.catch(() => undefined);
  }
  // The first failure is the one reported; it aborts the rest.
  let firstError: { err: unknown } | undefined;
  const commits = commitInOrder(deps, source, chains, staged, imageBudget, counted, flush, opts.progress);
  commits.catch((err: unknown) => {
    firstError ??= { err };
    failFast.abort(err);
  });
  const downloads = boundedAll(source.layers, deps.concurrency, failFast, signal, async (layer, i) => {
    try {
      if (snapshots.has(chains[i]!)) {
        settle[i]!(undefined);
        return;
      }
      settle[i]!(await stageLayer(deps, source, layer, i, diffIds[i]!, imageBudget, signal, opts.progress));
    } catch (err) {
      // Recorded here, before the abort it causes: the commit chain may see a layer below this
      // one fail with that abort before the downloads as a whole settle.
      firstError ??= { err };
      settle[i]!(undefined, err);
      throw err;
    }
  });
  downloads.catch((err: unknown) => {
    firstError ??= { err };
    // Layers never started (the pull failed first) settle too, so the commit chain ends.
    for (const s of settle) s(undefined, err);
  });
  // Both settle before we return or throw, so no thread still writes into a staging dir.
  await Promise.allSettled([downloads, commits]);
  if (firstError) {
    // The layers staged but never committed (a later commit failed, or an earlier layer did).
    await Promise.all(staged.map(async (p) => {
      const s = await p.catch(() => undefined);
      if (s && !s.committed) await removeTree(s.dir);
    }));
    throw firstError.err;
  }
  return { config, configBytes, diffIds, chainIds: chains };
}

/** A layer unpacked into its staging dir, verified, waiting for its turn to commit. */
interface StagedLayer {
  dir: string;
  diffId: string;
  fileBytes: number;
  committed: boolean;
}

/**
 * Download layer `i` and unpack it as it arrives into a fresh staging dir. The staging dir is in
 * the snapshot root (so its rename into a snapshot is atomic) and named tmp-*, which the
 * snapshotter sweeps at start-up: a crash mid-unpack leaves nothing behind. On failure the dir is
 * removed here, once the unpack thread has stopped writing into it.
 */
async function stageLayer(deps: IngestDeps, source: ImageSource, layer: Descriptor, i: number, diffId: string,
  budget: ByteBudget, signal: AbortSignal, progress: PullProgress | undefined): Promise<StagedLayer> {
  const { content, snapshots, limits } = deps;
  const started = Date.now();
  const dir = join(snapshots.dir, `tmp-unpack-${randomBytes(8).toString('hex')}`);
  await mkdir(dir, { mode: 0o755 });
  // The umask must not narrow the layer root's mode (a layer without a "./" entry keeps it).
  await chmod(dir, 0o755);
  const what = `layer ${layer.digest} of image "${source.name}"`;
  const unpackOpts = {
    signal, what, budget,
    // The content store verifies the blob digest: an uncompressed layer's diffID is that.
    blobDigest: layer.digest,
    maxBytes: limits.maxLayerBytes,
    maxEntries: limits.maxLayerEntries,
  };
  let job: LayerUnpack | undefined;
  try {
    const blobPath = await content.ingest(layer, () => source.openBlob(layer), {
      signal,
      onProgress: progress && ((n) => progress.layerBytes(i, n)),
      // A download unpacks as it arrives, on the thread that also writes the blob file.
      sinkAt: (tmp) => (job = deps.unpackPool.unpack(dir, { download: tmp }, unpackOpts)),
    });
    progress?.layerState(i, 'unpacking');
    // The blob was on the node already, or another pull fetched it: unpack it from disk.
    job ??= deps.unpackPool.unpack(dir, { file: blobPath }, unpackOpts);
    const res = await job.result;
    if (res.diffId !== diffId) {
      throw new DataLossError(`layer ${layer.digest} unpacks to ${res.diffId}, but the image config says diff_id ${diffId}`);
    }
    deps.log.debug({ layer: layer.digest, size: layer.size, ms: Date.now() - started }, 'layer unpacked');
    return { dir, diffId: res.diffId, fileBytes: res.fileBytes, committed: false };
  } catch (err) {
    if (job) {
      job.abort(err instanceof Error ? err : new Error(String(err)));
      await job.result.catch(() => undefined);
    }
    await removeTree(dir);
    throw err;
  }
}

/**
 * Commit the staged layers as snapshots in chain order, each once it and its parent are ready.
 * The first failure stops the chain: the layers above it cannot commit without it.
 */
async function commitInOrder(deps: IngestDeps, source: ImageSource, chains: string[],
  staged: Promise<StagedLayer | undefined>[], budget: ByteBudget, counted: Set<number>, flush: SnapshotFlush,
  progress: PullProgress | undefined): Promise<void> {
  const { snapshots } = deps;
  for (let i = 0; i < chains.length; i++) {
    const layer = await staged[i]!;
    const chainId = chains[i]!;
    if (!layer) {
      // Present before this pull got to it; one another pull committed meanwhile counts its size.
      if (!counted.has(i)) budget.add(snapshots.get(chainId)?.size ?? 0);
      progress?.layerState(i, 'present');
      continue;
    }
    // A flush ahead that failed may have lost the layers below: its error is the pull's.
    flush.throwIfFailed();
    await snapshots.ensureLayer(chainId, i === 0 ? undefined : chains[i - 1], async (dir) => {
      // `dir` is the snapshot's empty fs dir: the staged tree replaces it whole.
      await rename(layer.dir, dir);
      layer.committed = true;
      return { diffId: layer.diffId, size: layer.fileBytes };
    }, flush);
    // Another pull committed this chain while we unpacked: ours is a spare copy.
    if (!layer.committed) {
      layer.committed = true;
      await removeTree(layer.dir);
    }
    deps.log.debug({ layer: source.layers[i]!.digest }, 'layer committed');
    progress?.layerState(i, 'done');
  }
}
