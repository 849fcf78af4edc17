// UpdateRuntimeConfig: kubelet hands the node's pod CIDR to the runtime at start-up.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, removeNetwork, type TestDaemon } from '../test-support/daemon.js';

describe('UpdateRuntimeConfig', () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon();
  });
  afterAll(async () => {
    await d?.cleanup();
  });

  const pod = (name: string) => ({ metadata: { name, namespace: 'default', uid: `u-${name}`, attempt: 0 }, linux: {} });

  it('moves the built-in network to the pod CIDR kubelet sends, and refuses while pods hold addresses', async () => {
    const [a, b, c] = d.podCidr.split('.');
    const next = `${a}.${b}.${(Number(c) + 1) % 256}.0/24`;
    await d.cri.runtime.UpdateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: next } } });
    const { podSandboxId } = await d.cri.runtime.RunPodSandbox({ config: pod('p1') });
    const ip = (await d.cri.runtime.PodSandboxStatus({ podSandboxId })).status.network.ip as string;
    expect(ip.startsWith(`${a}.${b}.${(Number(c) + 1) % 256}.`)).toBe(true);
    await expect(d.cri.runtime.UpdateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: d.podCidr } } })).rejects.toMatchObject({
      code: status.FAILED_PRECONDITION,
    });
    // The same CIDR again, or none, is a no-op.
    await d.cri.runtime.UpdateRuntimeConfig({ runtimeConfig: { networkConfig: { podCidr: next } } });
    await d.cri.runtime.UpdateRuntimeConfig({ runtimeConfig: {} });
    await d.cri.runtime.RemovePodSandbox({ podSandboxId });
    await removeNetwork(d.bridge, d.nftTable);
  });
});
