// The name, label and annotation syntax the Kubernetes API server enforces, as predicates that
// say what is wrong (undefined when the value is fine). Where real CRI clients send more than
// the API server itself allows, the rule is widened just enough and the comment says why:
//   - kubelet copies the pod name (a DNS subdomain, up to 253 characters) into the
//     io.kubernetes.pod.name label, so label values may be that long, not only 63;
//   - critest (the CRI conformance suite) names pods and containers in mixed case
//     ("create-PodSandbox-for-container-<uuid>") and its container names reach 85 characters,
//     so metadata names are case-insensitive and container names may be DNS subdomains.
// Every widened rule still excludes what makes a name dangerous downstream: ';' and '=' (CNI_ARGS
// is "K=V;K=V"), '/' and '..' (paths), whitespace and control characters (files, log lines).

/** A DNS-1123 subdomain's length (Kubernetes object names, label key prefixes). */
export const DNS_SUBDOMAIN_MAX = 253;
/** A DNS-1123 label's length (namespaces, the name part of label keys). */
export const DNS_LABEL_MAX = 63;
/** The name part of a label or annotation key (validation.IsQualifiedName). */
export const QUALIFIED_NAME_MAX = 63;
/** Label values: the API server allows 63, kubelet itself puts pod names (253) there. */
export const LABEL_VALUE_MAX = DNS_SUBDOMAIN_MAX;

const ALNUM = 'A-Za-z0-9';
/** Case-insensitive DNS subdomain: alphanumerics, '-' and '.', alphanumeric at both ends. */
const SUBDOMAIN_ANY_CASE = new RegExp(`^[${ALNUM}]([${ALNUM}.-]*[${ALNUM}])?$`);
/** Case-insensitive DNS label: alphanumerics and '-', alphanumeric at both ends. */
const LABEL_ANY_CASE = new RegExp(`^[${ALNUM}]([${ALNUM}-]*[${ALNUM}])?$`);
/** The API server's DNS-1123 subdomain (lowercase), for label key prefixes. */
const SUBDOMAIN_LOWER = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
/** validation.IsQualifiedName's name part, also a label value's syntax. */
const QUALIFIED = new RegExp(`^[${ALNUM}]([${ALNUM}_.-]*[${ALNUM}])?$`);
/** Pod UIDs: UUIDs from the API server, hex hashes for static pods; no API rule beyond that. */
const UID = new RegExp(`^[${ALNUM}]([${ALNUM}_.-]*[${ALNUM}])?$`);

function tooLong(value: string, max: number): string | undefined {
  return value.length > max ? `is ${value.length} characters, more than ${max}` : undefined;
}

/** Pod and container names: case-insensitive DNS subdomains (see the header for why). */
export function nameProblem(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  return tooLong(value, DNS_SUBDOMAIN_MAX) ?? (SUBDOMAIN_ANY_CASE.test(value)
    ? undefined
    : `must consist of letters, digits, '-' and '.', and start and end with a letter or digit`);
}

/** Namespaces: case-insensitive DNS labels. */
export function namespaceProblem(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  return tooLong(value, DNS_LABEL_MAX) ?? (LABEL_ANY_CASE.test(value)
    ? undefined
    : `must consist of letters, digits and '-', and start and end with a letter or digit`);
}

export function uidProblem(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  return tooLong(value, DNS_SUBDOMAIN_MAX) ?? (UID.test(value)
    ? undefined
    : `must consist of letters, digits, '-', '_' and '.', and start and end with a letter or digit`);
}

/**
 * A label or annotation key: an optional DNS subdomain prefix (at most 253, lowercase) and '/',
 * then a name of at most 63 letters, digits, '-', '_' and '.' starting and ending with a letter
 * or digit. The API server lowercases annotation keys before this check, so their prefix may
 * be in any case.
 */
export function qualifiedNameProblem(key: string, anyCasePrefix = false): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return `has more than one '/'`;
  const name = parts[parts.length - 1]!;
  if (parts.length === 2) {
    const prefix = anyCasePrefix ? parts[0]!.toLowerCase() : parts[0]!;
    if (prefix === '') return `has an empty prefix before '/'`;
    if (prefix.length > DNS_SUBDOMAIN_MAX) return `has a prefix of ${prefix.length} characters, more than ${DNS_SUBDOMAIN_MAX}`;
    if (!SUBDOMAIN_LOWER.test(prefix)) return 'has a prefix that is not a lowercase DNS subdomain';
  }
  if (name === '') return 'has an empty name';
  if (name.length > QUALIFIED_NAME_MAX) return `has a name part of ${name.length} characters, more than ${QUALIFIED_NAME_MAX}`;
  if (!QUALIFIED.test(name)) return `has a name part that is not letters, digits, '-', '_' and '.' starting and ending with a letter or digit`;
  return undefined;
}

/** A label value: empty, or at most 253 of what a qualified name's name part may hold. */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  return tooLong(value, LABEL_VALUE_MAX) ?? (QUALIFIED.test(value)
    ? undefined
    : `must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit`);
}

/** A hostname: at most 64 bytes (the kernel's HOST_NAME_MAX) of DNS subdomain characters. */
export const HOSTNAME_MAX = 64;
export function hostnameProblem(value: string): string | undefined {
  return tooLong(value, HOSTNAME_MAX) ?? (SUBDOMAIN_ANY_CASE.test(value)
    ? undefined
    : `must consist of letters, digits, '-' and '.', and start and end with a letter or digit`);
}

/** Sysctl names as the API server accepts them (dots or slashes between segments). */
const SYSCTL = /^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$/;
export function sysctlNameProblem(name: string): string | undefined {
  return tooLong(name, DNS_SUBDOMAIN_MAX) ?? (SYSCTL.test(name) ? undefined : 'is not a sysctl name');
}
