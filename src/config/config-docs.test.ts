// deploy/config.toml is the documented default config that deploy/install.sh puts in
// /etc/crib/config.toml. These tests keep it from rotting: it must load with the daemon's own
// loader to exactly the built-in defaults, mention every key the schema accepts (keys without a
// default commented out, with an example), mention no key the schema refuses, give each key a
// comment, and its commented-out examples must themselves be a valid config.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { configFromObject, configSchema, loadConfig } from './config.js';

const FILE = fileURLToPath(new URL('../../deploy/config.toml', import.meta.url));
const text = readFileSync(FILE, 'utf8');
const lines = text.split('\n');

/** Strip the wrappers that do not change a key's place in the tree (default, optional, transforms). */
function unwrap(s: z.ZodTypeAny): z.ZodTypeAny {
  for (;;) {
    if (s instanceof z.ZodDefault) s = s._def.innerType as z.ZodTypeAny;
    else if (s instanceof z.ZodOptional) s = s.unwrap() as z.ZodTypeAny;
    else if (s instanceof z.ZodEffects) s = s.innerType() as z.ZodTypeAny;
    else return s;
  }
}

/** Every leaf key of the schema as a dotted path; "*" stands for a record's user-chosen key. */
function schemaLeaves(s: z.ZodTypeAny, prefix: string[] = []): string[] {
  const t = unwrap(s);
  if (t instanceof z.ZodObject) return Object.entries(t.shape as Record<string, z.ZodTypeAny>).flatMap(([k, v]) => schemaLeaves(v, [...prefix, k]));
  if (t instanceof z.ZodRecord) return schemaLeaves(t._def.valueType as z.ZodTypeAny, [...prefix, '*']);
  return [prefix.join('.')];
}

/** A documented path resolved against the schema ("*" for record keys); undefined if the schema
 * has no such key; `table` tells whether it names a table (object or record) rather than a value. */
function resolve(path: string[]): { key: string; table: boolean } | undefined {
  let s: z.ZodTypeAny = configSchema();
  const out: string[] = [];
  for (const seg of path) {
    const t = unwrap(s);
    if (t instanceof z.ZodObject) {
      const next = (t.shape as Record<string, z.ZodTypeAny>)[seg];
      if (!next) return undefined;
      s = next;
      out.push(seg);
    } else if (t instanceof z.ZodRecord) {
      s = t._def.valueType as z.ZodTypeAny;
      out.push('*');
    } else {
      return undefined;
    }
  }
  const t = unwrap(s);
  return { key: out.join('.'), table: t instanceof z.ZodObject || t instanceof z.ZodRecord };
}

/** The key path a TOML table header names, e.g. `[registry."docker.io".auth]`, read by the TOML parser. */
function headerPath(header: string): string[] {
  const path: string[] = [];
  let node = parseToml(header) as Record<string, unknown>;
  for (;;) {
    const keys = Object.keys(node);
    if (keys.length !== 1) return path;
    path.push(keys[0]!);
    node = node[keys[0]!] as Record<string, unknown>;
  }
}

interface Mention {
  path: string[];
  line: number;
  commented: boolean;
  isHeader: boolean;
}

const HEADER = /^(# ?)?(\[[^\]#]+\])\s*$/;
const SETTING = /^(# ?)?([A-Za-z0-9_]+)\s*=\s*(.*)$/;
const isProse = (line: string) => line.startsWith('#') && !HEADER.test(line) && !SETTING.test(line);

/** Every table header and key the file sets or shows commented out, with the table it is in. */
function mentions(): Mention[] {
  const out: Mention[] = [];
  let realTable: string[] = [];
  let shownTable: string[] = [];
  lines.forEach((line, i) => {
    const h = HEADER.exec(line);
    if (h) {
      shownTable = headerPath(h[2]!);
      if (!h[1]) realTable = shownTable;
      out.push({ path: shownTable, line: i + 1, commented: !!h[1], isHeader: true });
      return;
    }
    const k = SETTING.exec(line);
    if (!k) return;
    // A value set for real must sit under the table the file shows it in, or the documentation
    // would claim a key in one section that TOML reads in another.
    if (!k[1] && shownTable.join('.') !== realTable.join('.')) {
      throw new Error(`deploy/config.toml:${i + 1}: "${k[2]}" is set under a commented-out table header; comment it out too or move it`);
    }
    out.push({ path: [...shownTable, k[2]!], line: i + 1, commented: !!k[1], isHeader: false });
  });
  return out;
}

describe('deploy/config.toml', () => {
  it('loads with the daemon\'s loader to exactly the built-in defaults', async () => {
    expect(await loadConfig(FILE)).toEqual(configFromObject({}));
  });

  it('mentions every key the config schema accepts, each once, and no other', () => {
    const found = new Map<string, number[]>();
    for (const m of mentions()) {
      const r = resolve(m.path);
      if (!r) throw new Error(`deploy/config.toml:${m.line}: "${m.path.join('.')}" is not a key the config accepts (src/config/config.ts)`);
      if (r.table !== m.isHeader) throw new Error(`deploy/config.toml:${m.line}: "${m.path.join('.')}" is ${r.table ? 'a table' : 'a value'} in the schema`);
      if (!m.isHeader) found.set(r.key, [...(found.get(r.key) ?? []), m.line]);
    }
    const leaves = schemaLeaves(configSchema());
    expect(leaves.length).toBeGreaterThan(40); // the walk itself works: crib has dozens of keys
    expect(leaves.filter((k) => !found.has(k)), 'keys missing from deploy/config.toml').toEqual([]);
    expect([...found].filter(([, at]) => at.length > 1).map(([k, at]) => `${k} (lines ${at.join(', ')})`), 'keys shown twice').toEqual([]);
  });

  it('gives every key a comment of its own', () => {
    const bare = mentions()
      .filter((m) => !m.isHeader)
      .filter((m) => !isProse(lines[m.line - 2] ?? '') && !/#[^"]*$/.test(lines[m.line - 1]!.replace(/^# ?/, '')))
      .map((m) => `line ${m.line}: ${m.path.join('.')}`);
    expect(bare, 'keys with no comment directly above them').toEqual([]);
  });

  it('has commented-out examples that are a valid config once uncommented', () => {
    const uncommented = lines.map((l) => (HEADER.test(l) || SETTING.test(l) ? l.replace(/^# ?/, '') : l)).join('\n');
    const c = configFromObject(parseToml(uncommented), 'deploy/config.toml with every example uncommented');
    // Each example is read where the comments say it belongs.
    expect(c.registry['docker.io']?.auth?.username).toBeDefined();
    expect(c.runtime.handlers['runc']?.path).toBeDefined();
    expect(c.metrics.address).toBeDefined();
  });
});
