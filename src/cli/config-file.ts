// Pod and container config files for runp/create/run: the CRI messages as JSON or YAML, in
// crictl's spelling (snake_case, as protobuf's JSON accepts) or camelCase. Keys are turned into
// the camelCase the gRPC client sends; map fields (labels, annotations, sysctls) keep theirs.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { CliError } from './cli-error.js';

/** Fields whose values are maps with user-chosen keys: their keys are data, not field names. */
const MAP_FIELDS = new Set(['labels', 'annotations', 'sysctls']);
/** A config file is a few KiB; anything this big is a mistake, not a pod. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const camel = (k: string): string => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

export function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = camel(k);
    out[key] = MAP_FIELDS.has(key) ? v : camelKeys(v);
  }
  return out;
}

export async function readConfigFile(path: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read the ${what} file ${path}: ${(err as Error).message}.`);
  }
  if (text.length > MAX_CONFIG_BYTES) throw new CliError(`the ${what} file ${path} is over ${MAX_CONFIG_BYTES} bytes: is it the right file?`);
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new CliError(`the ${what} file ${path} is neither JSON nor YAML: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CliError(`the ${what} file ${path} must hold one object (the CRI ${what}), not ${Array.isArray(raw) ? 'a list' : typeof raw}.`);
  }
  return camelKeys(raw) as Record<string, unknown>;
}
