// Output of listing and inspecting verbs: a table by default (crictl's columns), or the CRI
// objects as JSON or YAML (`-o json|yaml`), which scripts should use: tables change with taste.
import Table from 'cli-table3';
import { stringify as toYaml } from 'yaml';
import { UsageError } from './cli-error.js';

export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

export function parseOutputFormat(text: string | undefined, dflt: OutputFormat = 'table'): OutputFormat {
  if (text === undefined) return dflt;
  if ((OUTPUT_FORMATS as readonly string[]).includes(text)) return text as OutputFormat;
  throw new UsageError(`unknown output format "${text}": use one of ${OUTPUT_FORMATS.join(', ')}.`);
}

/** JSON or YAML of a value (objects keep the CRI's field names). */
export function formatData(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value);
}

/** A borderless table in crictl's style: header row, columns padded with spaces. */
export function formatTable(head: string[], rows: string[][]): string {
  const table = new Table({
    head,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '',
      'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '   ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  table.push(...rows);
  return `${table.toString().split('\n').map((l) => l.trimEnd()).join('\n')}\n`;
}

export function print(text: string): void {
  process.stdout.write(text);
}

/** "3 minutes ago", as crictl prints CREATED, from a CRI nanosecond timestamp. */
export function ago(nanos: string | number | undefined, now = Date.now()): string {
  if (nanos === undefined || nanos === '' || nanos === '0') return '';
  const ms = Number(BigInt(nanos) / 1_000_000n);
  const s = Math.max(0, Math.round((now - ms) / 1000));
  const unit = (n: number, u: string) => `${n} ${u}${n === 1 ? '' : 's'} ago`;
  if (s < 1) return 'Less than a second ago';
  if (s < 60) return unit(s, 'second');
  if (s < 3600) return unit(Math.floor(s / 60), 'minute');
  if (s < 86400) return unit(Math.floor(s / 3600), 'hour');
  return unit(Math.floor(s / 86400), 'day');
}

/** Bytes for people: 1.2MB (decimal units, as crictl's SIZE column). */
export function humanBytes(n: number | string | undefined): string {
  const v = Number(n ?? 0);
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let x = v;
  while (x >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  return i === 0 ? `${v}B` : `${x.toFixed(x < 10 ? 2 : x < 100 ? 1 : 0)}${units[i]}`;
}

/** An id cut to 13 characters unless --no-trunc, as crictl shows them. */
export function shortId(id: string, noTrunc = false): string {
  const bare = id.startsWith('sha256:') ? id.slice(7) : id;
  return noTrunc ? bare : bare.slice(0, 13);
}

/** The CRI's state enums without their prefix: CONTAINER_RUNNING -> Running. */
export function stateName(state: string | undefined): string {
  const s = (state ?? '').replace(/^(CONTAINER_|SANDBOX_)/, '').toLowerCase();
  return s === 'notready' ? 'NotReady' : s.charAt(0).toUpperCase() + s.slice(1);
}

/** A Status's verbose info map holds JSON strings: show them as the objects they are. */
export function parseVerboseInfo(info: Record<string, string> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info ?? {})) {
    try {
      out[k] = JSON.parse(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}
