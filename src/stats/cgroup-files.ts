// Parsers for the small text files cgroups expose, and typed access to the texts of one cgroup
// directory's files read together (KernelFileReader.readDirs: sliced off the event loop's long runs, nothing kept open).
// A file that is absent (controller not mounted or not enabled, kernel too old) reads as
// undefined so each reader can leave that section out.
import type { CgroupReadScope, PidsReading } from './cgroup-stats.js';
import { DirectoryGoneError, type KernelFileReader } from './kernel-file-reader.js';

/** kubelet's threshold: limits above 2^62 bytes mean "unlimited" (v1 reports ~2^63 − 4096). */
export const UNLIMITED_MEMORY = 1n << 62n;

export function limited(limit: bigint | undefined): bigint | undefined {
  return limit === undefined || limit > UNLIMITED_MEMORY ? undefined : limit;
}

export const floorSub = (a: bigint, b: bigint): bigint => (a > b ? a - b : 0n);

/**
 * "key value" lines (memory.stat, cpu.stat, cpuacct.stat, memory.events) → map of bigints. A
 * line counts only when it is a key, blanks, and a decimal number (nothing after but blanks).
 * With `keys`, only those keys are kept: memory.stat has ~40-70 lines, read for every
 * container of a listing, and a CRI reading wants five of them; the others are skipped without
 * making a string or a bigint of them (a listing's garbage was mostly these).
 */
export function parseFlatKeyed(text: string, keys?: ReadonlySet<string>): Map<string, bigint> {
  const out = new Map<string, bigint>();
  const len = text.length;
  let pos = 0;
  while (pos < len) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = len;
    let i = pos;
    pos = end + 1;
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    const keyStart = i;
    while (i < end && !isSpace(text.charCodeAt(i))) i++;
    const keyEnd = i;
    if (keyEnd === keyStart || i === end || !isBlank(text.charCodeAt(i))) continue;
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    const valueStart = i;
    while (i < end && isDigit(text.charCodeAt(i))) i++;
    const valueEnd = i;
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    if (valueEnd === valueStart || i !== end) continue;
    const key = text.slice(keyStart, keyEnd);
    if (keys !== undefined && !keys.has(key)) continue;
    out.set(key, BigInt(text.slice(valueStart, valueEnd)));
  }
  return out;
}

const isBlank = (c: number) => c === 0x20 || c === 0x09;
// A key is a run of anything but blanks, CR, VT and FF (LF ends the line).
const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** A single unsigned number (memory.current, pids.current); "max" → undefined (no limit). */
export function parseSingle(text: string): bigint | undefined {
  const t = text.trim();
  if (t === 'max') return undefined;
  if (!/^\d+$/.test(t)) throw new Error(`expected a number, read "${t}"`);
  return BigInt(t);
}

export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  /** Cumulative stall time in nanoseconds (the kernel reports microseconds). */
  totalNs: bigint;
}

export interface PsiReading {
  some?: PsiLine;
  full?: PsiLine;
}

/** A v2 *.pressure file: "some avg10=0.00 avg60=0.00 avg300=0.00 total=123" (+ "full ..."). */
export function parsePressure(text: string): PsiReading {
  const out: PsiReading = {};
  for (const line of text.split('\n')) {
    const [kind, ...fields] = line.trim().split(/\s+/);
    if (kind !== 'some' && kind !== 'full') continue;
    const kv = new Map(fields.map((f) => f.split('=') as [string, string]));
    const total = kv.get('total');
    if (total === undefined || !/^\d+$/.test(total)) continue;
    out[kind] = {
      avg10: Number(kv.get('avg10') ?? 0),
      avg60: Number(kv.get('avg60') ?? 0),
      avg300: Number(kv.get('avg300') ?? 0),
      totalNs: BigInt(total) * 1000n,
    };
  }
  return out;
}

/**
 * The texts of one cgroup directory's files, as one KernelFileReader.readDirs group gave them
 * (`texts[i]` is `names[i]`'s), parsed as each kind of file needs. Asking for a file that was
 * not read is a bug in the caller, and throws.
 */
export class CgroupFileTexts {
  constructor(
    readonly dir: string,
    private readonly names: readonly string[],
    private readonly texts: readonly (string | undefined)[],
  ) {}

  text(name: string): string | undefined {
    const i = this.names.indexOf(name);
    if (i < 0) throw new Error(`cgroup file ${name} was not read with ${this.dir}'s files`);
    return this.texts[i];
  }

  single(name: string): bigint | undefined {
    const t = this.text(name);
    if (t === undefined) return undefined;
    try {
      return parseSingle(t);
    } catch (err) {
      throw new Error(`cgroup file ${this.dir}/${name}: ${(err as Error).message}`);
    }
  }

  /** With `keys`: only those keys are parsed (parseFlatKeyed). */
  flatKeyed(name: string, keys?: ReadonlySet<string>): Map<string, bigint> | undefined {
    const t = this.text(name);
    return t === undefined ? undefined : parseFlatKeyed(t, keys);
  }

  /** A *.pressure file. */
  pressure(name: string): PsiReading | undefined {
    const t = this.text(name);
    return t === undefined ? undefined : parsePressure(t);
  }
}

/** Lines of cgroup.procs: the processes directly in the cgroup. */
export function countProcs(text: string): bigint {
  return BigInt(text.split('\n').filter((l) => l.trim() !== '').length);
}

/** pids.current (and pids.max for metrics), v1 or v2 alike; undefined when the pids controller
 * gave no count (not enabled, or not mounted). */
export function pidsCount(f: CgroupFileTexts, scope: CgroupReadScope): PidsReading | undefined {
  const current = f.single('pids.current');
  if (current === undefined) return undefined;
  const out: PidsReading = { current };
  const limit = scope.metrics ? f.single('pids.max') : undefined;
  if (limit !== undefined) out.limit = limit;
  return out;
}

/** The number of processes listed in the cgroup directory `dir` itself (where no pids controller
 * counts them); undefined when the cgroup went away since its other files were read. */
export async function countedProcs(reader: KernelFileReader, dir: string): Promise<PidsReading | undefined> {
  try {
    const procs = await reader.read(dir, 'cgroup.procs', { list: true });
    return procs === undefined ? undefined : { current: countProcs(procs) };
  } catch (err) {
    if (err instanceof DirectoryGoneError && err.dir === dir) return undefined;
    throw err;
  }
}
