// Container environment as kubelet makes it: each variable in order, a value or a fieldRef into
// the pod (name, namespace, uid, IP, node name), or a key of a ConfigMap/Secret given on the
// command line; values may refer to earlier variables as $(NAME), and command/args may refer to
// any of them. "$$" escapes a dollar. An unknown $(NAME) stays as written, as kubelet leaves it.
import { InvalidArgumentError } from '../errors.js';

export interface EnvVarSpec {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string; apiVersion?: string };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
  };
}

export interface PodFacts {
  name: string;
  namespace: string;
  uid: string;
  podIp: string;
  nodeName: string;
}

/** Name → key → value of the ConfigMaps and Secrets the command line gave. */
export type DataSources = { configMaps: Map<string, Map<string, Buffer>>; secrets: Map<string, Map<string, Buffer>> };

export const FIELD_PATHS = ['metadata.name', 'metadata.namespace', 'metadata.uid', 'status.podIP', 'spec.nodeName'] as const;

export function fieldValue(fieldPath: string, pod: PodFacts): string {
  switch (fieldPath) {
    case 'metadata.name': return pod.name;
    case 'metadata.namespace': return pod.namespace;
    case 'metadata.uid': return pod.uid;
    case 'status.podIP': return pod.podIp;
    case 'spec.nodeName': return pod.nodeName;
    default:
      throw new InvalidArgumentError(`fieldRef.fieldPath "${fieldPath}" is not supported: use one of ${FIELD_PATHS.join(', ')}`);
  }
}

/** Expand $(NAME) references with `vars`; "$$" is a literal "$". */
export function expand(text: string, vars: Map<string, string>): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== '$' || i + 1 >= text.length) {
      out += ch;
      continue;
    }
    const next = text[i + 1]!;
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const end = text.indexOf(')', i + 2);
      if (end < 0) {
        out += text.slice(i);
        break;
      }
      const name = text.slice(i + 2, end);
      out += vars.has(name) ? vars.get(name)! : text.slice(i, end + 1);
      i = end;
    } else {
      out += ch;
    }
  }
  return out;
}

function keyRef(kind: 'ConfigMap' | 'Secret', sources: Map<string, Map<string, Buffer>>, ref: { name: string; key: string; optional?: boolean }, field: string): string | undefined {
  const data = sources.get(ref.name);
  const value = data?.get(ref.key);
  if (value !== undefined) return value.toString('utf8');
  if (ref.optional) return undefined;
  const flag = kind === 'ConfigMap' ? '--configmap' : '--secret';
  throw new InvalidArgumentError(data
    ? `${field}: ${kind} "${ref.name}" has no key "${ref.key}"`
    : `${field}: ${kind} "${ref.name}" was not given: pass its manifest with ${flag} FILE`);
}

/** The container's environment, in order, as CRI key/value pairs. */
export function containerEnv(env: EnvVarSpec[] | undefined, pod: PodFacts, sources: DataSources, field: string): { key: string; value: string }[] {
  const vars = new Map<string, string>();
  const out: { key: string; value: string }[] = [];
  (env ?? []).forEach((e, i) => {
    const f = `${field}.env[${i}]`;
    let value: string | undefined;
    if (e.valueFrom?.fieldRef) value = fieldValue(e.valueFrom.fieldRef.fieldPath, pod);
    else if (e.valueFrom?.configMapKeyRef) value = keyRef('ConfigMap', sources.configMaps, e.valueFrom.configMapKeyRef, `${f}.valueFrom.configMapKeyRef`);
    else if (e.valueFrom?.secretKeyRef) value = keyRef('Secret', sources.secrets, e.valueFrom.secretKeyRef, `${f}.valueFrom.secretKeyRef`);
    else value = expand(e.value ?? '', vars);
    if (value === undefined) return;
    vars.set(e.name, value);
    const at = out.findIndex((o) => o.key === e.name);
    if (at >= 0) out[at] = { key: e.name, value };
    else out.push({ key: e.name, value });
  });
  return out;
}

/** command/args with $(NAME) expanded from the container's environment. */
export function expandAll(list: string[] | undefined, env: { key: string; value: string }[]): string[] {
  const vars = new Map(env.map((e) => [e.key, e.value]));
  return (list ?? []).map((s) => expand(s, vars));
}
