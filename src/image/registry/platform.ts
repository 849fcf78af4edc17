// Choosing one image from a multi-platform index the way containerd's default matcher does:
// same OS, same GOARCH, and for arm the same variant, preferring an exact variant over none.
import { NotFoundError } from '../../errors.js';
import type { Descriptor, Platform } from './types.js';

const GOARCH: Record<string, string> = {
  x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x',
  riscv64: 'riscv64', mips: 'mips', mipsel: 'mipsle', loong64: 'loong64',
};

/** The platform of this machine in OCI terms (linux/amd64, linux/arm64/v8, linux/arm/v7). */
export function hostPlatform(): Platform {
  const architecture = GOARCH[process.arch] ?? process.arch;
  const platform: Platform = { os: 'linux', architecture };
  if (architecture === 'arm64') platform.variant = 'v8';
  if (architecture === 'arm') {
    const v = Number((process.config.variables as Record<string, unknown>)['arm_version'] ?? 7);
    platform.variant = `v${Number.isFinite(v) ? v : 7}`;
  }
  return platform;
}

/** Variants that mean the same thing: arm64 is v8 unless it says otherwise. */
function normalVariant(p: Platform): string {
  if (p.architecture === 'arm64' && (p.variant === undefined || p.variant === '' || p.variant === 'v8')) return 'v8';
  if (p.architecture === 'amd64' && (p.variant === undefined || p.variant === '' || p.variant === 'v1')) return '';
  return p.variant ?? '';
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');
}

/**
 * Rank of a candidate for the wanted platform: 2 exact, 1 acceptable (no variant given where one
 * is wanted), 0 no match.
 */
export function platformRank(want: Platform, have: Platform | undefined): number {
  if (!have || have.os !== want.os || have.architecture !== want.architecture) return 0;
  const w = normalVariant(want);
  const h = normalVariant(have);
  if (w === h) return 2;
  if (h === '') return 1;
  // An arm/v6 image runs on a v7 host, as containerd allows; an older variant ranks lower.
  if (want.architecture === 'arm' && /^v\d$/.test(h) && /^v\d$/.test(w) && h < w) return 1;
  return 0;
}

/** The index entry to pull for `want`; NotFoundError naming the platforms available otherwise. */
export function selectManifest(entries: Descriptor[], want: Platform, image: string): Descriptor {
  let best: Descriptor | undefined;
  let bestRank = 0;
  for (const entry of entries) {
    const rank = platformRank(want, entry.platform);
    if (rank > bestRank) {
      best = entry;
      bestRank = rank;
    }
  }
  if (!best) {
    const available = entries.map((e) => (e.platform ? formatPlatform(e.platform) : 'unspecified')).join(', ') || 'none';
    throw new NotFoundError(`image "${image}" has no manifest for platform ${formatPlatform(want)} (available: ${available})`);
  }
  return best;
}
