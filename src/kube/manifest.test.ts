import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_MANIFEST_BYTES, parseManifest, readManifest } from './manifest.js';

const c = (name = 'a') => `{name: ${name}, image: busybox}`;

describe('manifests', () => {
  it('reads ---separated Pods into the client-node V1Pod model, namespace default', async () => {
    const pods = await parseManifest(`kind: Pod\nmetadata: {name: one}\nspec: {containers: [${c()}]}\n---\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: two, namespace: x}\nspec: {containers: [${c()}]}\n`, 'f.yaml');
    expect(pods.map((p) => [p.namespace, p.name])).toEqual([['default', 'one'], ['x', 'two']]);
    expect(pods[0]!.pod.constructor.name).toBe('V1Pod');
  });

  it('plays the pod template of a one-replica Deployment, ReplicaSet or Job', async () => {
    const [d] = await parseManifest(`apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [${c()}]}\n`, 'd.yaml');
    expect([d!.namespace, d!.name, d!.pod.metadata!.labels]).toEqual(['prod', 'web', { app: 'web' }]);
    const [j] = await parseManifest(`apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n  template:\n    spec: {restartPolicy: Never, containers: [${c()}]}\n`, 'j.yaml');
    expect(j!.pod.spec!.restartPolicy).toBe('Never');
    await expect(parseManifest(`apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec: {replicas: 3, template: {spec: {containers: [${c()}]}}}\n`, 'd.yaml'))
      .rejects.toThrow('spec.replicas 3 is out of range (1..1)');
    await expect(parseManifest(`apiVersion: batch/v1\nkind: Job\nmetadata: {name: w}\nspec: {template: {spec: {containers: [${c()}]}}}\n`, 'j.yaml'))
      .rejects.toThrow('a Job\'s pod template needs restartPolicy OnFailure or Never');
    await expect(parseManifest('apiVersion: v1\nkind: Service\nmetadata: {name: s}\n', 's.yaml')).rejects.toThrow('kind "Service" cannot be played');
  });

  it('names every unsupported field by its path', async () => {
    await expect(parseManifest(`kind: Pod\nmetadata: {name: p, generateName: x}\nspec:\n  affinity: {}\n  containers:\n  - {name: a, image: b, lifecycle: {}, volumeMounts: [{name: v, mountPath: /v, subPath: x}]}\n  volumes: [{name: v, persistentVolumeClaim: {claimName: c}}]\n`, 'p.yaml'))
      .rejects.toThrow('p.yaml, document 1: crib kube play does not support these fields: metadata.generateName, spec.affinity, spec.containers[0].lifecycle, spec.containers[0].volumeMounts[0].subPath, spec.volumes[0].persistentVolumeClaim');
  });

  it('checks types, references and names, all problems at once', async () => {
    await expect(parseManifest(`kind: Pod\nmetadata: {name: p}\nspec:\n  restartPolicy: Sometimes\n  containers:\n  - {name: a, image: b, command: echo}\n`, 'p.yaml'))
      .rejects.toThrow('spec.restartPolicy "Sometimes" is not supported: use one of Always, OnFailure, Never; spec.containers[0].command must be a list, not a string');
    await expect(parseManifest(`kind: Pod\nmetadata: {name: Bad_Name}\nspec:\n  containers:\n  - {name: a, image: b, volumeMounts: [{name: nope, mountPath: /x}], livenessProbe: {exec: {command: [x]}, tcpSocket: {port: 1}}}\n  - {name: a, image: b, resources: {limits: {cpu: lots}}}\n`, 'p.yaml'))
      .rejects.toThrow(/metadata.name "Bad_Name" is not a DNS subdomain.*volumeMounts\[0\].name "nope" names no volume.*livenessProbe must have exactly one of exec, httpGet, tcpSocket.*name "a" is used by another container.*"lots" is not a quantity/);
  });

  it('reads YAML as kubectl does (1.1: 0644 is octal) and bounds the input', async () => {
    const [p] = await parseManifest(`kind: Pod\nmetadata: {name: p}\nspec:\n  volumes: [{name: s, secret: {secretName: s, defaultMode: 0400}}]\n  containers: [${c()}]\n`, 'p.yaml');
    expect(p!.pod.spec!.volumes![0]!.secret!.defaultMode).toBe(0o400);
    await expect(parseManifest(`kind: Pod\nmetadata: {name: p}\nspec: {containers: [${Array.from({ length: 17 }, (_, i) => c(`c${i}`)).join(',')}]}\n`, 'p.yaml'))
      .rejects.toThrow('spec.containers has 17 items; the limit is 16');
    await expect(parseManifest(Array.from({ length: 33 }, (_, i) => `kind: Pod\nmetadata: {name: p${i}}\nspec: {containers: [${c()}]}\n`).join('---\n'), 'p.yaml'))
      .rejects.toThrow('holds 33 documents; the limit is 32');
    await expect(parseManifest('', 'e.yaml')).rejects.toThrow('e.yaml holds no documents');
    const dir = await mkdtemp(join(tmpdir(), 'crib-manifest-'));
    try {
      const big = join(dir, 'big.yaml');
      await writeFile(big, `# ${'x'.repeat(MAX_MANIFEST_BYTES)}\n`);
      await expect(readManifest(big)).rejects.toThrow(`a manifest may be at most ${MAX_MANIFEST_BYTES} bytes`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
