// A small schema language for the manifest fields `crib kube play` supports, and the walk that
// checks a parsed YAML document against it. Every field not in the schema is collected by its
// path (spec.containers[0].lifecycle) so the user learns exactly what would have been ignored;
// every value is type- and size-checked, since the manifest is outside input.
export type Schema =
  | { t: 'string'; max?: number; oneOf?: readonly string[] }
  | { t: 'int'; min?: number; max?: number }
  | { t: 'bool' }
  | { t: 'intOrString' }
  | { t: 'quantity' }
  | { t: 'map'; value: Schema; keys?: readonly string[]; max?: number }
  | { t: 'object'; fields: Record<string, Schema>; required?: readonly string[] }
  | { t: 'list'; of: Schema; max: number };

/** A string's default bound: manifests carry names, paths and short scripts, not data. */
export const MAX_STRING = 64 * 1024;
const MAX_MAP = 256;

export const str = (opts: { max?: number; oneOf?: readonly string[] } = {}): Schema => ({ t: 'string', ...opts });
export const int = (min?: number, max?: number): Schema => ({ t: 'int', min, max });
export const bool: Schema = { t: 'bool' };
export const intOrString: Schema = { t: 'intOrString' };
export const quantity: Schema = { t: 'quantity' };
export const obj = (fields: Record<string, Schema>, required: readonly string[] = []): Schema => ({ t: 'object', fields, required });
export const list = (of: Schema, max: number): Schema => ({ t: 'list', of, max });
export const map = (value: Schema, opts: { keys?: readonly string[]; max?: number } = {}): Schema => ({ t: 'map', value, ...opts });

export interface SchemaFindings {
  /** Fields crib does not implement (or that do not exist): path of each. */
  unsupported: string[];
  /** Fields with a wrong type, out of range or missing: one sentence each. */
  invalid: string[];
}

const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `a ${typeof v}`);

export function checkSchema(value: unknown, schema: Schema, path: string, out: SchemaFindings = { unsupported: [], invalid: [] }): SchemaFindings {
  const join = (key: string) => (path ? `${path}.${key}` : key);
  switch (schema.t) {
    case 'string':
      if (typeof value !== 'string') out.invalid.push(`${path} must be a string, not ${kindOf(value)}`);
      else if (value.length > (schema.max ?? MAX_STRING)) out.invalid.push(`${path} is ${value.length} characters long; the limit is ${schema.max ?? MAX_STRING}`);
      else if (schema.oneOf && !schema.oneOf.includes(value)) out.invalid.push(`${path} "${value}" is not supported: use one of ${schema.oneOf.join(', ')}`);
      break;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) out.invalid.push(`${path} must be an integer, not ${kindOf(value)}`);
      else if ((schema.min !== undefined && value < schema.min) || (schema.max !== undefined && value > schema.max)) {
        out.invalid.push(`${path} ${value} is out of range (${schema.min ?? '-∞'}..${schema.max ?? '∞'})`);
      }
      break;
    case 'bool':
      if (typeof value !== 'boolean') out.invalid.push(`${path} must be true or false, not ${kindOf(value)}`);
      break;
    case 'intOrString':
    case 'quantity':
      if (!(typeof value === 'string' && value.length <= 256) && !(typeof value === 'number' && Number.isFinite(value))) {
        out.invalid.push(`${path} must be a number or a short string, not ${kindOf(value)}`);
      }
      break;
    case 'map': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        out.invalid.push(`${path} must be a mapping, not ${kindOf(value)}`);
        break;
      }
      const entries = Object.entries(value);
      if (entries.length > (schema.max ?? MAX_MAP)) out.invalid.push(`${path} has ${entries.length} entries; the limit is ${schema.max ?? MAX_MAP}`);
      for (const [k, v] of entries.slice(0, schema.max ?? MAX_MAP)) {
        if (k.length > 253) out.invalid.push(`${path} has a key of ${k.length} characters; the limit is 253`);
        else if (schema.keys && !schema.keys.includes(k)) out.unsupported.push(join(k));
        else checkSchema(v, schema.value, join(k), out);
      }
      break;
    }
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        out.invalid.push(`${path || 'the document'} must be a mapping, not ${kindOf(value)}`);
        break;
      }
      const rec = value as Record<string, unknown>;
      for (const [k, v] of Object.entries(rec)) {
        const field = Object.hasOwn(schema.fields, k) ? schema.fields[k] : undefined;
        if (!field) out.unsupported.push(join(k));
        else if (v !== null) checkSchema(v, field, join(k), out);
      }
      for (const r of schema.required ?? []) if (rec[r] === undefined || rec[r] === null) out.invalid.push(`${join(r)} is required`);
      break;
    }
    case 'list':
      if (!Array.isArray(value)) {
        out.invalid.push(`${path} must be a list, not ${kindOf(value)}`);
        break;
      }
      if (value.length > schema.max) out.invalid.push(`${path} has ${value.length} items; the limit is ${schema.max}`);
      value.slice(0, schema.max).forEach((v, i) => checkSchema(v, schema.of, `${path}[${i}]`, out));
      break;
  }
  return out;
}
