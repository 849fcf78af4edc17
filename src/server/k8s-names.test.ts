import { describe, expect, it } from 'vitest';
import {
  hostnameProblem, labelValueProblem, nameProblem, namespaceProblem, qualifiedNameProblem, sysctlNameProblem, uidProblem,
} from './k8s-names.js';

describe('Kubernetes name rules', () => {
  it('accepts what kubelet and critest send for names, namespaces and uids', () => {
    for (const name of ['web', 'nginx-sandbox', 'create-PodSandbox-for-container-1f0c3a52-8a4e-4f1b-9d2e-0c7f5b1a2e3d',
      'container-with-RunAsGroup-without-RunAsUser-test-1f0c3a52-8a4e-4f1b-9d2e-0c7f5b1a2e3d', 'a.b-c', 'x'.repeat(253)]) {
      expect(nameProblem(name), name).toBeUndefined();
    }
    expect(namespaceProblem('cri-test-namespace1f0c3a52-8a4e-4f1b-9d2e-0c7f5b1a2e3d')).toBeUndefined();
    expect(namespaceProblem('kube-system')).toBeUndefined();
    expect(uidProblem('1f0c3a52-8a4e-4f1b-9d2e-0c7f5b1a2e3d')).toBeUndefined();
    expect(uidProblem('uid-Not_A-Valid.HOSTNAME-1')).toBeUndefined();
  });

  it('refuses what would inject into CNI_ARGS, paths or log lines', () => {
    for (const bad of ['a;b', 'a=b', 'x;K8S_POD_NAMESPACE=kube-system', '../etc', 'a/b', 'a b', 'a\nb', '-a', 'a-', 'a_b', '']) {
      expect(nameProblem(bad), bad).toBeDefined();
    }
    expect(nameProblem('x'.repeat(254))).toMatch(/254 characters, more than 253/);
    expect(namespaceProblem('a.b')).toMatch(/letters, digits and '-'/);
    expect(namespaceProblem('n'.repeat(64))).toMatch(/more than 63/);
    expect(uidProblem('u;x')).toBeDefined();
  });

  it('checks label and annotation keys like the API server', () => {
    for (const ok of ['app', 'app.kubernetes.io/name', 'io.kubernetes.pod.name', 'a_b.c-d', 'example.com/X_y']) {
      expect(qualifiedNameProblem(ok), ok).toBeUndefined();
    }
    expect(qualifiedNameProblem('a/b/c')).toMatch(/more than one '\/'/);
    expect(qualifiedNameProblem('/x')).toMatch(/empty prefix/);
    expect(qualifiedNameProblem('Example.com/x')).toMatch(/lowercase DNS subdomain/);
    expect(qualifiedNameProblem('Example.com/x', true)).toBeUndefined();
    expect(qualifiedNameProblem(`${'p'.repeat(254)}/x`)).toMatch(/prefix of 254 characters/);
    expect(qualifiedNameProblem('n'.repeat(64))).toMatch(/name part of 64 characters, more than 63/);
    expect(qualifiedNameProblem('-x')).toMatch(/starting and ending/);
  });

  it('allows label values as long as a pod name (kubelet copies it into io.kubernetes.pod.name)', () => {
    expect(labelValueProblem('')).toBeUndefined();
    expect(labelValueProblem('PodSandbox-with-attributes-1f0c3a52')).toBeUndefined();
    expect(labelValueProblem('v'.repeat(253))).toBeUndefined();
    expect(labelValueProblem('v'.repeat(254))).toMatch(/more than 253/);
    expect(labelValueProblem('a b')).toBeDefined();
  });

  it('checks hostnames and sysctl names', () => {
    expect(hostnameProblem('test-hostname')).toBeUndefined();
    expect(hostnameProblem('h'.repeat(65))).toMatch(/more than 64/);
    expect(hostnameProblem('evil\n10.0.0.1 kube-apiserver')).toBeDefined();
    expect(sysctlNameProblem('net.ipv4.ip_forward')).toBeUndefined();
    expect(sysctlNameProblem('net/ipv4/conf/eth0.100/forwarding')).toBeUndefined();
    expect(sysctlNameProblem('net.ipv4/../../kernel')).toBeDefined();
  });
});
