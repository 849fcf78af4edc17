// Parsers for the small text files cgroups expose. A file that is absent (controller not mounted
// or not enabled, kernel too old) reads as undefined so each reader can leave that section out;
// any other failure is a real error and propagates.
//
// cgroupfs files are generated in memory by the kernel and never wait on a disk, so they are read
// synchronously: ~10 µs each, against ~50 µs for a round trip through libuv's 4-thread pool,
// which a ListContainerStats of 100 containers (1,600 files) would also saturate.
import { readFileSync, statSync } from 'node:fs';
import { errnoCode } from '../errors.js';

/** kubelet's threshold: limits above 2^62 bytes mean "unlimited" (v1 reports ~2^63 − 4096). */
export const UNLIMITED_MEMORY = 1n << 62n;

export function limited(limit: bigint | undefined): bigint | undefined {
  return limit === undefined || limit > UNLIMITED_MEMORY ? undefined : limit;
}

export const floorSub = (a: bigint, b: bigint): bigint => (a > b ? a - b : 0n);

/** Contents of a cgroup file, or undefined when it does not exist. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    // ENODEV: some v1 files exist but refuse reads when the feature is compiled out.
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'EOPNOTSUPP') return undefined;
    throw err;
  }
}

/** "key value" lines (memory.stat, cpu.stat, cpuacct.stat, memory.events) → map of bigints. */
export function parseFlatKeyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const [key, value, extra] = line.trim().split(/\s+/);
    if (!key || value === undefined || extra !== undefined || !/^\d+$/.test(value)) continue;
    out.set(key, BigInt(value));
  }
  return out;
}

/** A single unsigned number (memory.current, pids.current); "max" → undefined (no limit). */
export function parseSingle(text: string, path: string): bigint | undefined {
  const t = text.trim();
  if (t === 'max') return undefined;
  if (!/^\d+$/.test(t)) throw new Error(`cgroup file ${path}: expected a number, read "${t}"`);
  return BigInt(t);
}

export async function readSingle(path: string): Promise<bigint | undefined> {
  const text = await readOptional(path);
  return text === undefined ? undefined : parseSingle(text, path);
}

export async function readFlatKeyed(path: string): Promise<Map<string, bigint> | undefined> {
  const text = await readOptional(path);
  return text === undefined ? undefined : parseFlatKeyed(text);
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

/** Whether `dir` is an existing directory (a cgroup that is there). */
export async function isDirectory(dir: string): Promise<boolean> {
  try {
    return statSync(dir).isDirectory();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
    throw err;
  }
}
