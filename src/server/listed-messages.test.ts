// The pod and container listings' entries (listed-messages.ts): encoded once per record state,
// the same bytes protobufjs gives, and never a state the record has left.
import { describe, expect, it } from 'vitest';
import type { ContainerRecord } from '../container/container-record.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { containerMessage, podSandboxMessage } from './cri-messages.js';
import { criProto, criServices } from './cri-proto.js';
import { listedContainer, listedPodSandbox } from './listed-messages.js';

const rpcs = criServices().RuntimeService;
// grpc-js's client side: proto-loader's own (protobufjs) decoding.
const client = criProto().runtime.v1.RuntimeService.service as unknown as Record<string, { responseDeserialize(b: Buffer): any }>;

const pod = (state: string): SandboxRecord => ({
  id: 'p'.repeat(64), state, createdAt: '1764730000123456789', runtimeHandler: 'runc',
  config: {
    metadata: { name: 'web-0', uid: 'uid-0', namespace: 'd\u00e9faut', attempt: 2 },
    labels: { app: 'web', 'io.kubernetes.pod.name': 'web-0' },
    annotations: { 'kubernetes.io/config.source': 'api' },
  },
}) as unknown as SandboxRecord;

const container = (extra: Partial<ContainerRecord>): ContainerRecord => ({
  id: 'c'.repeat(64), podId: 'p'.repeat(64), created: true, createdAt: '1764730000123456789',
  imageName: 'registry.example/busybox:latest', imageId: `sha256:${'a'.repeat(64)}`,
  config: {
    metadata: { name: 'main', attempt: 1 },
    image: { image: 'busybox', annotations: { a: 'b' }, userSpecifiedImage: 'busybox', runtimeHandler: '' },
    labels: { 'io.kubernetes.container.name': 'main' }, annotations: { 'io.kubernetes.container.hash': '1234' },
  },
  ...extra,
}) as unknown as ContainerRecord;

describe('listed pod and container entries', () => {
  it('encode a listing as protobufjs does, and decode to the messages built from the records', () => {
    const pods = [pod('ready'), pod('notready')];
    const sent = rpcs.ListPodSandbox.responseSerialize!({ items: pods.map(listedPodSandbox) });
    expect(client.ListPodSandbox!.responseDeserialize(sent)).toEqual(client.ListPodSandbox!.responseDeserialize(
      rpcs.ListPodSandbox.responseSerialize!({ items: pods.map((p) => ({ ...podSandboxMessage(p) })) })));
    expect(client.ListPodSandbox!.responseDeserialize(sent).items.map((i: any) => i.state)).toEqual(['SANDBOX_READY', 'SANDBOX_NOTREADY']);
    const cs = [container({}), container({ startedAt: '1764730001000000000' }), container({ startedAt: '1', finishedAt: '2' })];
    const listed = rpcs.ListContainers.responseSerialize!({ containers: cs.map(listedContainer) });
    const decoded = client.ListContainers!.responseDeserialize(listed);
    expect(decoded.containers.map((c: any) => c.state)).toEqual(['CONTAINER_CREATED', 'CONTAINER_RUNNING', 'CONTAINER_EXITED']);
    expect(decoded.containers[0].image).toMatchObject({ image: 'registry.example/busybox:latest', userSpecifiedImage: 'busybox', annotations: { a: 'b' } });
    expect(decoded.containers[0].labels).toEqual({ 'io.kubernetes.container.name': 'main' });
    expect(decoded).toEqual(client.ListContainers!.responseDeserialize(
      rpcs.ListContainers.responseSerialize!({ containers: cs.map((c) => ({ ...containerMessage(c) })) })));
  });

  it('reuse a record\'s entry while its state holds, and never list a state it has left, even changed in place', () => {
    const p = pod('ready');
    const first = listedPodSandbox(p);
    expect(listedPodSandbox(p)).toBe(first);
    (p as { state: string }).state = 'notready';
    const after = listedPodSandbox(p);
    expect(after).not.toBe(first);
    expect(client.ListPodSandbox!.responseDeserialize(rpcs.ListPodSandbox.responseSerialize!({ items: [after] })).items[0].state).toBe('SANDBOX_NOTREADY');
    const c = container({ startedAt: '1764730001000000000' });
    const running = listedContainer(c);
    expect(listedContainer(c)).toBe(running);
    (c as { finishedAt?: string }).finishedAt = '1764730002000000000';
    const exited = listedContainer(c);
    expect(client.ListContainers!.responseDeserialize(rpcs.ListContainers.responseSerialize!({ containers: [exited] })).containers[0].state).toBe('CONTAINER_EXITED');
  });
});
