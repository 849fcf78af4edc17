// CDI names: a device is asked for by its fully-qualified name "vendor.com/class=name", where
// "vendor.com/class" is the kind a spec file declares. The rules are the CDI specification's;
// checking them here keeps a malformed request from ever reaching a file lookup.

export interface QualifiedName {
  kind: string;
  name: string;
}

// vendor: DNS-like labels; class: letters, digits, '-', '_'; both start with a letter and end
// with a letter or digit. A device name may start with a digit (CDI 0.5.0) and carry '.' and ':'.
const VENDOR = /^[A-Za-z](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const CLASS = /^[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const DEVICE = /^[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?$/;

/** Why `kind` ("vendor.com/class") is not a valid kind, or undefined when it is. */
export function kindProblem(kind: string): string | undefined {
  const slash = kind.indexOf('/');
  if (slash < 0 || kind.indexOf('/', slash + 1) >= 0) return `kind "${kind}" must be "vendor/class" with exactly one "/"`;
  const vendor = kind.slice(0, slash);
  const cls = kind.slice(slash + 1);
  if (vendor.length > 253 || !VENDOR.test(vendor) || vendor.includes('..')) return `kind "${kind}": vendor "${vendor}" is not a DNS-like name`;
  if (cls.length > 63 || !CLASS.test(cls)) return `kind "${kind}": class "${cls}" must be letters, digits, "-", "_" or "." (63 at most), starting with a letter`;
  return undefined;
}

/** Why `name` is not a valid device name, or undefined when it is. */
export function deviceNameProblem(name: string): string | undefined {
  if (name.length > 253 || !DEVICE.test(name)) {
    return `device name "${name}" must be letters, digits, "-", "_", "." or ":" (253 at most), starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Splits "vendor.com/class=name"; throws a message naming what is wrong. */
export function parseQualifiedName(fq: string): QualifiedName {
  const eq = fq.indexOf('=');
  if (eq < 0) throw new Error(`"${fq}" is not a fully-qualified CDI device name (vendor.com/class=name)`);
  const kind = fq.slice(0, eq);
  const name = fq.slice(eq + 1);
  const problem = kindProblem(kind) ?? deviceNameProblem(name);
  if (problem) throw new Error(`"${fq}" is not a fully-qualified CDI device name (vendor.com/class=name): ${problem}`);
  return { kind, name };
}
