// Sizes in the config file: a whole number of bytes, or a number with a binary unit ("64MiB",
// "16GiB"). Decimal units (MB, GB) are refused rather than guessed at: a limit off by 7% because
// "GB" was read as GiB is a limit nobody meant.
const UNIT_BYTES: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

/** Bytes for "16GiB", "512 MiB", "1048576" or a number; undefined when malformed. */
export function parseByteSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?$/.exec(value.trim());
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * UNIT_BYTES[m[2] ?? 'B']!);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** "16 GiB", "64 MiB", "1000 bytes": a size as a person reads it in an error message. */
export function formatByteSize(bytes: number): string {
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB'] as const) {
    const n = bytes / UNIT_BYTES[unit]!;
    if (n >= 1) return `${Number.isInteger(n) ? n : n.toFixed(1)} ${unit}`;
  }
  return `${bytes} bytes`;
}
