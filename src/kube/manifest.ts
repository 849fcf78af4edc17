// Reading a manifest file into the pods to play: `---`-separated documents, each a Pod or a
// Deployment/ReplicaSet/Job whose pod template is played as one pod. The YAML is checked against
// the fields crib implements (pod-schema.ts: unsupported ones are listed by path) and then read
// into @kubernetes/client-node's V1Pod model. YAML 1.1, as kubectl reads manifests: a mode
// written 0644 is octal there (in YAML 1.2 it would be the decimal 644). Only the model files are imported: the package's
// index pulls in its HTTP client (a nested undici that does not load on Node 20), and a manifest
// reader needs none of it.
import { readFile, stat } from 'node:fs/promises';
import type { V1Pod } from '@kubernetes/client-node/dist/gen/models/V1Pod.js';
import { InvalidArgumentError } from '../errors.js';
import { checkSchema, type SchemaFindings } from './field-schema.js';
import { podSchema, workloadSchemas } from './pod-schema.js';
import { qosClass } from './resources.js';

export const MAX_MANIFEST_BYTES = 1024 * 1024;
export const MAX_DOCUMENTS = 32;

export interface PlayablePod {
  /** "pod.yaml, document 2 (Deployment web)": where the pod came from, for messages. */
  source: string;
  name: string;
  namespace: string;
  pod: V1Pod;
  /** The document as written, for the supervisor (which re-reads it into the model). */
  raw: Record<string, unknown>;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export class ManifestError extends InvalidArgumentError {}

export async function readManifest(path: string): Promise<PlayablePod[]> {
  const st = await stat(path);
  if (!st.isFile()) throw new ManifestError(`${path} is not a regular file`);
  if (st.size > MAX_MANIFEST_BYTES) throw new ManifestError(`${path} is ${st.size} bytes; a manifest may be at most ${MAX_MANIFEST_BYTES} bytes`);
  return parseManifest(await readFile(path, 'utf8'), path);
}

export async function parseManifest(text: string, file: string): Promise<PlayablePod[]> {
  if (Buffer.byteLength(text) > MAX_MANIFEST_BYTES) throw new ManifestError(`${file} is larger than ${MAX_MANIFEST_BYTES} bytes`);
  const { parseAllDocuments } = await import('yaml');
  const docs = parseAllDocuments(text, { uniqueKeys: true, version: '1.1' });
  if (!Array.isArray(docs)) throw new ManifestError(`${file}: not a YAML stream`);
  const values: { index: number; value: unknown }[] = [];
  docs.forEach((d, i) => {
    if (d.errors.length > 0) throw new ManifestError(`${file}, document ${i + 1}: ${d.errors[0]!.message}`);
    const value = d.toJS({ maxAliasCount: 100 }) as unknown;
    if (value !== null && value !== undefined) values.push({ index: i + 1, value });
  });
  if (values.length === 0) throw new ManifestError(`${file} holds no documents: write a Pod (kind: Pod) in it`);
  if (values.length > MAX_DOCUMENTS) throw new ManifestError(`${file} holds ${values.length} documents; the limit is ${MAX_DOCUMENTS}`);
  const pods = await Promise.all(values.map(({ index, value }) => toPod(value, `${file}, document ${index}`)));
  const seen = new Set<string>();
  for (const p of pods) {
    const key = `${p.namespace}/${p.name}`;
    if (seen.has(key)) throw new ManifestError(`${p.source}: pod ${key} appears twice in ${file}`);
    seen.add(key);
  }
  return pods;
}

function findingsError(where: string, f: SchemaFindings): ManifestError | undefined {
  const parts: string[] = [];
  if (f.unsupported.length > 0) {
    parts.push(`crib kube play does not support ${f.unsupported.length === 1 ? 'this field' : 'these fields'}: ${f.unsupported.join(', ')} (remove ${f.unsupported.length === 1 ? 'it' : 'them'}: crib never ignores a field)`);
  }
  if (f.invalid.length > 0) parts.push(f.invalid.join('; '));
  return parts.length > 0 ? new ManifestError(`${where}: ${parts.join('; ')}`) : undefined;
}

async function toPod(doc: unknown, where: string): Promise<PlayablePod> {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new ManifestError(`${where}: a document must be a mapping (a Kubernetes object)`);
  const d = doc as Record<string, unknown>;
  const kind = d.kind;
  let raw: Record<string, unknown>;
  let label: string;
  if (kind === 'Pod' || kind === undefined) {
    if (d.apiVersion !== undefined && d.apiVersion !== 'v1') throw new ManifestError(`${where}: apiVersion "${String(d.apiVersion)}" of a Pod must be v1`);
    const err = findingsError(where, checkSchema(d, podSchema, ''));
    if (err) throw err;
    raw = d;
    label = 'Pod';
  } else if (typeof kind === 'string' && Object.hasOwn(workloadSchemas, kind)) {
    const w = workloadSchemas[kind]!;
    if (d.apiVersion !== w.apiVersion) throw new ManifestError(`${where}: apiVersion "${String(d.apiVersion)}" of a ${kind} must be ${w.apiVersion}`);
    const err = findingsError(where, checkSchema(d, w.schema, ''));
    if (err) throw err;
    const meta = d.metadata as Record<string, unknown>;
    const tpl = (d.spec as { template: { metadata?: Record<string, unknown>; spec: Record<string, unknown> } }).template;
    // The pod is named after its workload (a controller would add a hash and a random suffix:
    // one replica on one node needs neither), in the workload's namespace.
    raw = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { ...(tpl.metadata ?? {}), name: tpl.metadata?.name ?? meta.name, namespace: meta.namespace ?? tpl.metadata?.namespace, ...(meta.uid ? { uid: meta.uid } : {}) },
      spec: tpl.spec,
    };
    const policy = (tpl.spec.restartPolicy as string | undefined) ?? (kind === 'Job' ? undefined : 'Always');
    if (kind !== 'Job' && policy !== 'Always') throw new ManifestError(`${where}: a ${kind}'s pod template must have restartPolicy Always, not ${policy}`);
    if (kind === 'Job' && policy !== 'OnFailure' && policy !== 'Never') throw new ManifestError(`${where}: a Job's pod template needs restartPolicy OnFailure or Never`);
    label = kind;
  } else {
    throw new ManifestError(`${where}: kind "${String(kind)}" cannot be played: use a Pod, or a Deployment, ReplicaSet or Job with one replica`);
  }
  const { ObjectSerializer } = await import('@kubernetes/client-node/dist/gen/models/ObjectSerializer.js');
  const pod = ObjectSerializer.deserialize(raw, 'V1Pod', '') as V1Pod;
  const name = pod.metadata?.name;
  if (!name) throw new ManifestError(`${where}: metadata.name is required`);
  const namespace = pod.metadata?.namespace ?? 'default';
  const source = `${where} (${label} ${name})`;
  semanticChecks(pod, name, namespace, source);
  return { source, name, namespace, pod, raw };
}

/** What the schema cannot say: names, references between fields, one handler per probe. */
function semanticChecks(pod: V1Pod, name: string, namespace: string, where: string): void {
  const problems: string[] = [];
  if (!DNS_SUBDOMAIN.test(name) || name.length > 253) problems.push(`metadata.name "${name}" is not a DNS subdomain (lower-case letters, digits, '-' and '.')`);
  if (!DNS_LABEL.test(namespace)) problems.push(`metadata.namespace "${namespace}" is not a DNS label`);
  const spec = pod.spec!;
  if (spec.containers.length === 0) problems.push('spec.containers must list at least one container');
  if (spec.hostname !== undefined && !DNS_LABEL.test(spec.hostname)) problems.push(`spec.hostname "${spec.hostname}" is not a DNS label`);
  const volumes = new Set<string>();
  (spec.volumes ?? []).forEach((v, i) => {
    if (!DNS_LABEL.test(v.name)) problems.push(`spec.volumes[${i}].name "${v.name}" is not a DNS label`);
    if (volumes.has(v.name)) problems.push(`spec.volumes[${i}].name "${v.name}" is used twice`);
    volumes.add(v.name);
    const sources = [v.emptyDir, v.hostPath, v.configMap, v.secret].filter((s) => s !== undefined).length;
    if (sources !== 1) problems.push(`spec.volumes[${i}] ("${v.name}") must have exactly one of emptyDir, hostPath, configMap, secret`);
    if (v.hostPath && !v.hostPath.path.startsWith('/')) problems.push(`spec.volumes[${i}].hostPath.path "${v.hostPath.path}" must be absolute`);
    for (const [kind, items] of [['configMap', v.configMap?.items], ['secret', v.secret?.items]] as const) {
      (items ?? []).forEach((it, j) => {
        if (it.path.startsWith('/') || it.path.split('/').includes('..') || it.path === '') problems.push(`spec.volumes[${i}].${kind}.items[${j}].path "${it.path}" must be relative and must not contain ".."`);
      });
    }
  });
  const names = new Set<string>();
  const hostPorts = new Set<string>();
  const all = [...(spec.initContainers ?? []).map((c, i) => ({ c, f: `spec.initContainers[${i}]`, init: true })), ...spec.containers.map((c, i) => ({ c, f: `spec.containers[${i}]`, init: false }))];
  for (const { c, f, init } of all) {
    if (!DNS_LABEL.test(c.name)) problems.push(`${f}.name "${c.name}" is not a DNS label`);
    if (names.has(c.name)) problems.push(`${f}.name "${c.name}" is used by another container`);
    names.add(c.name);
    if (c.terminationMessagePath !== undefined && !c.terminationMessagePath.startsWith('/')) problems.push(`${f}.terminationMessagePath must be absolute`);
    (c.volumeMounts ?? []).forEach((m, j) => {
      if (!volumes.has(m.name)) problems.push(`${f}.volumeMounts[${j}].name "${m.name}" names no volume of spec.volumes`);
      if (!m.mountPath.startsWith('/')) problems.push(`${f}.volumeMounts[${j}].mountPath "${m.mountPath}" must be absolute`);
    });
    for (const p of c.ports ?? []) {
      if (p.hostPort) {
        const key = `${p.hostIP ?? ''}:${p.hostPort}/${p.protocol ?? 'TCP'}`;
        if (hostPorts.has(key)) problems.push(`${f}: hostPort ${p.hostPort}/${p.protocol ?? 'TCP'} is used twice`);
        hostPorts.add(key);
      }
    }
    for (const kind of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
      const probe = c[kind];
      if (!probe) continue;
      if (init) problems.push(`${f}.${kind}: init containers cannot have probes`);
      const handlers = [probe.exec, probe.httpGet, probe.tcpSocket].filter((h) => h !== undefined).length;
      if (handlers !== 1) problems.push(`${f}.${kind} must have exactly one of exec, httpGet, tcpSocket`);
      const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
      if (typeof port === 'string' && !/^\d+$/.test(port) && !(c.ports ?? []).some((p) => p.name === port)) {
        problems.push(`${f}.${kind}: port "${port}" names no port of the container`);
      }
      if ((kind === 'livenessProbe' || kind === 'startupProbe') && probe.successThreshold !== undefined && probe.successThreshold !== 1) {
        problems.push(`${f}.${kind}.successThreshold must be 1`);
      }
    }
  }
  try {
    qosClass([...(spec.initContainers ?? []), ...spec.containers] as never);
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length > 0) throw new ManifestError(`${where}: ${problems.join('; ')}`);
}
