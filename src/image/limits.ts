// Bounds on everything a registry (or an imported archive) hands the daemon. A registry is
// outside our control: a 5 MB gzip layer can inflate to 5 GiB, a config blob can be 200 MiB of
// JSON the daemon would parse in memory, a manifest can list a million layers. Every such input
// is checked against one of these limits, as early as the information allows (a descriptor's
// size before any download, a byte count while streaming), and a pull that hits one fails with
// RESOURCE_EXHAUSTED naming the config key, so an operator with a legitimately huge image knows
// exactly what to raise.
//
// The defaults, and why:
//   max_manifest_size   4 MiB  the OCI distribution spec's own bound on manifests registries
//                              must accept; real manifests and indexes are a few KiB.
//   max_index_manifests 1024   multi-arch indexes list a few dozen entries (platforms plus
//                              attestations); 1024 leaves room for Windows os.version fan-outs.
//   max_layers          128    Docker refuses images deeper than 125 layers, so no image that
//                              runs elsewhere is refused here.
//   max_config_size     8 MiB  real image configs are under 100 KiB (history grows ~200 bytes
//                              a layer); 8 MiB is ~80x that, and parsing it costs ~40 MB at most.
//   max_layer_size      16 GiB uncompressed tar bytes of one layer; the largest real layers (CUDA,
//                              ML frameworks) are 5-10 GiB.
//   max_image_size      64 GiB uncompressed bytes of all of an image's layers; images that bundle
//                              model weights reach 20-40 GiB.
//   max_layer_entries   1e6    tar entries in one layer: a full distribution is ~100k files and
//                              node_modules-heavy layers a few hundred thousand; every entry is
//                              an inode on the node.
import type { CribConfig } from '../config/config.js';
import { formatByteSize } from '../config/byte-size.js';
import { ResourceExhaustedError } from '../errors.js';

export interface ImageLimits {
  maxManifestBytes: number;
  maxIndexManifests: number;
  maxLayers: number;
  maxConfigBytes: number;
  maxLayerBytes: number;
  maxImageBytes: number;
  maxLayerEntries: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = {
  maxManifestBytes: 4 << 20,
  maxIndexManifests: 1024,
  maxLayers: 128,
  maxConfigBytes: 8 << 20,
  maxLayerBytes: 16 * 1024 ** 3,
  maxImageBytes: 64 * 1024 ** 3,
  maxLayerEntries: 1_000_000,
};

/** The config key of each limit, as messages name it. */
export const LIMIT_KEYS: Record<keyof ImageLimits, string> = {
  maxManifestBytes: 'image.max_manifest_size',
  maxIndexManifests: 'image.max_index_manifests',
  maxLayers: 'image.max_layers',
  maxConfigBytes: 'image.max_config_size',
  maxLayerBytes: 'image.max_layer_size',
  maxImageBytes: 'image.max_image_size',
  maxLayerEntries: 'image.max_layer_entries',
};

export function imageLimitsFromConfig(config: CribConfig): ImageLimits {
  const i = config.image;
  return {
    maxManifestBytes: i.max_manifest_size,
    maxIndexManifests: i.max_index_manifests,
    maxLayers: i.max_layers,
    maxConfigBytes: i.max_config_size,
    maxLayerBytes: i.max_layer_size,
    maxImageBytes: i.max_image_size,
    maxLayerEntries: i.max_layer_entries,
  };
}

const BYTE_LIMITS = new Set<keyof ImageLimits>(['maxManifestBytes', 'maxConfigBytes', 'maxLayerBytes', 'maxImageBytes']);

/** A value of limit `which` as messages show it: "64 MiB" for sizes, "128" for counts. */
export function formatLimit(which: keyof ImageLimits, n: number): string {
  return BYTE_LIMITS.has(which) ? formatByteSize(n) : String(n);
}

/**
 * The error for going over the limit `which`. `description` says what was seen, e.g.
 * `image "x" has 300 layers`; the message adds the limit and the config key that sets it.
 */
export function limitExceeded(which: keyof ImageLimits, limit: number, description: string): ResourceExhaustedError {
  const key = LIMIT_KEYS[which];
  return new ResourceExhaustedError(
    `${description}, over the limit of ${formatLimit(which, limit)} set by ${key} ` +
    `(raise ${key} in the crib config if this image is legitimate)`);
}

/**
 * A byte count shared by the streams of one pull (every layer of an image adds to it), failing
 * the stream that takes it over the limit.
 */
export class ByteBudget {
  private used = 0;

  /** `what` names the thing measured: `image "x" unpacks to`. */
  constructor(readonly which: keyof ImageLimits, readonly limit: number, private readonly what: string) {}

  get bytes(): number {
    return this.used;
  }

  /** Count `n` more bytes; throws ResourceExhaustedError once the total passes the limit. */
  add(n: number): void {
    this.used += n;
    if (this.used > this.limit) throw limitExceeded(this.which, this.limit, `${this.what} more than ${formatLimit(this.which, this.limit)}`);
  }
}
