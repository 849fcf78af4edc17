// ConfigMaps and Secrets for `crib kube play --configmap FILE --secret FILE`: there is no API
// server to read them from, so they come from local manifests. Each file may hold several
// `---`-separated objects. Values are kept as bytes (Secrets' data is base64, binaryData too).
import { readFile, stat } from 'node:fs/promises';
import { InvalidArgumentError } from '../errors.js';
import type { DataSources } from './env.js';

const MAX_SOURCE_FILE_BYTES = 1024 * 1024;
const MAX_KEYS = 256;
const KEY = /^[-._a-zA-Z0-9]+$/;

export function emptySources(): DataSources {
  return { configMaps: new Map(), secrets: new Map() };
}

function base64(value: unknown, where: string): Buffer {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(value)) throw new InvalidArgumentError(`${where} is not base64`);
  return Buffer.from(value, 'base64');
}

function strings(value: unknown, where: string): [string, unknown][] {
  if (value === undefined || value === null) return [];
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError(`${where} must be a mapping of keys to values`);
  return Object.entries(value);
}

export async function loadSources(configMapFiles: string[], secretFiles: string[]): Promise<DataSources> {
  const out = emptySources();
  const { parseAllDocuments } = await import('yaml');
  const load = async (file: string, kind: 'ConfigMap' | 'Secret') => {
    const st = await stat(file);
    if (st.size > MAX_SOURCE_FILE_BYTES) throw new InvalidArgumentError(`${file} is ${st.size} bytes; the limit is ${MAX_SOURCE_FILE_BYTES}`);
    const docs = parseAllDocuments(await readFile(file, 'utf8'), { version: '1.1' });
    if (!Array.isArray(docs)) throw new InvalidArgumentError(`${file}: not a YAML stream`);
    for (const [i, d] of docs.entries()) {
      const where = `${file}, document ${i + 1}`;
      if (d.errors.length > 0) throw new InvalidArgumentError(`${where}: ${d.errors[0]!.message}`);
      const o = d.toJS() as Record<string, unknown> | null;
      if (o === null || o === undefined) continue;
      if (o.kind !== kind) throw new InvalidArgumentError(`${where}: kind "${String(o.kind)}" given as --${kind.toLowerCase()}: the file must hold ${kind} objects`);
      const allowed = kind === 'ConfigMap' ? ['apiVersion', 'kind', 'metadata', 'data', 'binaryData', 'immutable'] : ['apiVersion', 'kind', 'metadata', 'data', 'stringData', 'type', 'immutable'];
      const extra = Object.keys(o).filter((k) => !allowed.includes(k));
      if (extra.length > 0) throw new InvalidArgumentError(`${where}: crib kube play does not support these fields: ${extra.join(', ')}`);
      const name = (o.metadata as { name?: unknown } | undefined)?.name;
      if (typeof name !== 'string' || name === '') throw new InvalidArgumentError(`${where}: metadata.name is required`);
      const data = new Map<string, Buffer>();
      const add = (k: string, v: Buffer, field: string) => {
        if (!KEY.test(k) || k.length > 253) throw new InvalidArgumentError(`${where}: ${field} key "${k}" is not a valid key (letters, digits, '-', '_', '.')`);
        data.set(k, v);
      };
      if (kind === 'ConfigMap') {
        for (const [k, v] of strings(o.data, `${where}: data`)) add(k, Buffer.from(String(v), 'utf8'), 'data');
        for (const [k, v] of strings(o.binaryData, `${where}: binaryData`)) add(k, base64(v, `${where}: binaryData.${k}`), 'binaryData');
      } else {
        for (const [k, v] of strings(o.data, `${where}: data`)) add(k, base64(v, `${where}: data.${k}`), 'data');
        for (const [k, v] of strings(o.stringData, `${where}: stringData`)) add(k, Buffer.from(String(v), 'utf8'), 'stringData');
      }
      if (data.size > MAX_KEYS) throw new InvalidArgumentError(`${where}: ${data.size} keys; the limit is ${MAX_KEYS}`);
      const into = kind === 'ConfigMap' ? out.configMaps : out.secrets;
      if (into.has(name)) throw new InvalidArgumentError(`${where}: ${kind} "${name}" was given twice`);
      into.set(name, data);
    }
  };
  for (const f of configMapFiles) await load(f, 'ConfigMap');
  for (const f of secretFiles) await load(f, 'Secret');
  return out;
}

/** Sources as JSON for the state file (values base64), and back. */
export function sourcesToJson(s: DataSources): Record<'configMaps' | 'secrets', Record<string, Record<string, string>>> {
  const conv = (m: Map<string, Map<string, Buffer>>) => Object.fromEntries([...m].map(([n, d]) => [n, Object.fromEntries([...d].map(([k, v]) => [k, v.toString('base64')]))]));
  return { configMaps: conv(s.configMaps), secrets: conv(s.secrets) };
}

export function sourcesFromJson(j: Record<'configMaps' | 'secrets', Record<string, Record<string, string>>>): DataSources {
  const conv = (o: Record<string, Record<string, string>>) => new Map(Object.entries(o).map(([n, d]) => [n, new Map(Object.entries(d).map(([k, v]) => [k, Buffer.from(v, 'base64')]))]));
  return { configMaps: conv(j.configMaps ?? {}), secrets: conv(j.secrets ?? {}) };
}
