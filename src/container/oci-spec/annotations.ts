// The io.kubernetes.cri.* annotations containerd writes into every container spec: tools that
// read bundles (NRI plugins, monitoring agents, runtime hooks) find the pod and container by them.
import type { PodSandboxConfig__Output } from '../../gen/runtime/v1/PodSandboxConfig.js';

export const ANNOTATION = {
  containerType: 'io.kubernetes.cri.container-type',
  sandboxId: 'io.kubernetes.cri.sandbox-id',
  sandboxName: 'io.kubernetes.cri.sandbox-name',
  sandboxNamespace: 'io.kubernetes.cri.sandbox-namespace',
  sandboxUid: 'io.kubernetes.cri.sandbox-uid',
  containerName: 'io.kubernetes.cri.container-name',
  imageName: 'io.kubernetes.cri.image-name',
} as const;

export function criAnnotations(
  sandboxId: string,
  sandbox: PodSandboxConfig__Output,
  containerName: string,
  imageName: string,
): Record<string, string> {
  return {
    [ANNOTATION.containerType]: 'container',
    [ANNOTATION.sandboxId]: sandboxId,
    [ANNOTATION.sandboxName]: sandbox.metadata?.name ?? '',
    [ANNOTATION.sandboxNamespace]: sandbox.metadata?.namespace ?? '',
    [ANNOTATION.sandboxUid]: sandbox.metadata?.uid ?? '',
    [ANNOTATION.containerName]: containerName,
    [ANNOTATION.imageName]: imageName,
  };
}
