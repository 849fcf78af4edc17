// Schema versions of persisted records and documents, so that a crib whose record format changed
// still reads what the crib before it wrote, with containers and pods still running on the node.
//
// On disk every record carries `version: N` next to its fields (the IPAM and host-port files
// always did). Records written before versions existed have none: they are version 1. Loading
// runs the schema's migrations, pure functions from version n to n+1, up to the version this
// crib writes; the next write of the record persists the migrated form. A record from a newer
// crib (a downgrade) is refused with an error naming the file and both versions, never dropped
// or overwritten: its fields mean things this crib cannot know.
//
// To change a record's format: raise `version` in its defineSchema call, and add under
// migrations[old version] a function that turns a document of the old shape into the new one
// (given and returning the fields without `version`). Never edit a migration that shipped.
import { DataLossError, FailedPreconditionError } from '../errors.js';
import { CRIB_VERSION } from '../version.js';

export type JsonObject = Record<string, unknown>;

/** Turns a version-n document (without `version`) into version n+1. Must be pure. */
export type Migration = (doc: JsonObject) => JsonObject;

export interface Schema<T> {
  /** What the document is, for messages: "container record", "IPAM file". */
  readonly kind: string;
  /** The version this crib writes. */
  readonly version: number;
  /** migrations[n] upgrades version n to n + 1, for every n below `version`. */
  readonly migrations: Readonly<Record<number, Migration>>;
  /** Never set: carries T, so a store and its schema cannot disagree on the record type. */
  readonly type?: T;
}

/** A record type may not use `version` itself: the schema version lives there. */
export type Versionless = { version?: never };

export function defineSchema<T extends object & Versionless>(
  kind: string,
  opts: { version?: number; migrations?: Record<number, Migration> } = {},
): Schema<T> {
  const version = opts.version ?? 1;
  const migrations = opts.migrations ?? {};
  if (!Number.isSafeInteger(version) || version < 1) throw new Error(`${kind}: schema version ${version} is not a positive integer`);
  for (let n = 1; n < version; n++) {
    if (typeof migrations[n] !== 'function') throw new Error(`${kind}: schema version ${version} has no migration from version ${n}`);
  }
  for (const key of Object.keys(migrations)) {
    const n = Number(key);
    if (!(n >= 1 && n < version)) throw new Error(`${kind}: migration from version ${key} is outside 1..${version - 1}`);
  }
  return { kind, version, migrations };
}

/** The JSON to persist for `value`: its fields, with the current schema version first. */
export function encodeDocument<T extends object>(schema: Schema<T>, value: T): JsonObject {
  return { version: schema.version, ...value };
}

/**
 * The record in `raw` (parsed from `file`), migrated to the current version. `from` is the
 * version it was written with.
 */
export function decodeDocument<T extends object>(schema: Schema<T>, raw: unknown, file: string): { value: T; from: number } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new DataLossError(`${schema.kind} ${file} is not a JSON object`);
  }
  const { version: stamped, ...fields } = raw as JsonObject;
  const from = stamped === undefined ? 1 : stamped;
  if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 1) {
    throw new DataLossError(`${schema.kind} ${file} has schema version ${JSON.stringify(from)}, which is not a positive integer`);
  }
  if (from > schema.version) {
    throw new FailedPreconditionError(
      `${schema.kind} ${file} has schema version ${from}, newer than version ${schema.version}, the newest this crib ` +
      `(${CRIB_VERSION}) knows: it was written by a newer crib. Run that crib again; this one will not read or overwrite the file`);
  }
  let doc: JsonObject = fields;
  for (let n = from; n < schema.version; n++) {
    try {
      doc = schema.migrations[n]!(doc);
    } catch (err) {
      throw new DataLossError(`${schema.kind} ${file}: migrating it from schema version ${n} to ${n + 1} failed: ${(err as Error).message}`, { cause: err });
    }
  }
  return { value: doc as T, from };
}
