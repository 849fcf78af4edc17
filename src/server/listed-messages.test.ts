// The pod and container listings' entries and the statuses (listed-messages.ts): encoded once per
// record state, the same bytes protobufjs gives, and never a state the record has left.
import { describe, expect, it } from 'vitest';
import type { ContainerRecord } from '../container/container-record.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { containerMessage, containerStatusMessage, podSandboxMessage, podSandboxStatusMessage } from './cri-messages.js';
import { criProto, criServices } from './cri-proto.js';
import { encodedBodyOf } from './direct-encoder.js';
import { encodedContainerStatus, encodedPodSandboxStatus, listedContainer, listedPodSandbox } from './listed-messages.js';

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
  it('keep each body in memory of its own: a view would hold a whole 8 KiB slab of Node\'s Buffer pool', () => {
    const messages = [listedPodSandbox(pod('ready')), encodedPodSandboxStatus(pod('ready')),
      listedContainer(container({})), encodedContainerStatus(container({}))];
    for (const m of messages) {
      const body = encodedBodyOf(m)!;
      expect(body.length).toBeGreaterThan(0);
      expect(body.length).toBeLessThan(4096); // what Buffer.allocUnsafe takes from the pool
      expect(body.buffer.byteLength).toBe(body.length);
    }
  });

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
    // The image's id once per entry as image_ref and image_id, not a third time in ImageSpec
    // (whose image_ref is an image volume's).
    expect(decoded.containers[0]).toMatchObject({ imageRef: `sha256:${'a'.repeat(64)}`, imageId: `sha256:${'a'.repeat(64)}` });
    expect(decoded.containers[0].image.imageRef).toBe('');
    expect(listed.toString('latin1').split(`sha256:${'a'.repeat(64)}`)).toHaveLength(1 + 2 * cs.length);
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

describe('pod and container statuses', () => {
  const full = (extra: Partial<ContainerRecord>) => container({
    logPath: '/var/log/pods/x/main/1.log',
    user: { uid: 1000, gid: 1000, additionalGids: [4, 27, 65534] },
    stopSignal: 'SIGTERM',
    ...extra,
    config: {
      ...container({}).config,
      mounts: [{ containerPath: '/data', hostPath: '/srv/data', readonly: true, propagation: 'PROPAGATION_PRIVATE' }],
      linux: { resources: { cpuShares: '512', memoryLimitInBytes: '67108864', unified: { 'memory.high': '60000000' } } },
    } as unknown as ContainerRecord['config'],
  } as Partial<ContainerRecord>);

  it('encode PodSandboxStatus and ContainerStatus answers byte for byte as built field by field', () => {
    const p = pod('ready');
    (p as { network?: unknown }).network = { ip: '10.88.0.7', ip6: 'fd00::7' };
    const cs = [full({}), full({ id: 'd'.repeat(64), startedAt: '1764730001000000000', finishedAt: '1764730002000000000', exitCode: 137, reason: 'OOMKilled', message: 'out of memory' } as Partial<ContainerRecord>)];
    const answer = (status: object, statuses: object[]) => rpcs.PodSandboxStatus.responseSerialize!({ status, info: {}, containersStatuses: statuses, timestamp: '1764730003000000000' });
    const cached = answer(encodedPodSandboxStatus(p), cs.map(encodedContainerStatus));
    const built = answer({ ...podSandboxStatusMessage(p) }, cs.map((c) => ({ ...containerStatusMessage(c) })));
    expect(cached.equals(built)).toBe(true);
    const decoded = client.PodSandboxStatus!.responseDeserialize(cached);
    expect(decoded.status).toMatchObject({ state: 'SANDBOX_READY', network: { ip: '10.88.0.7', additionalIps: [{ ip: 'fd00::7' }] } });
    expect(decoded.containersStatuses.map((c: any) => [c.state, c.exitCode, c.reason])).toEqual([['CONTAINER_CREATED', 0, ''], ['CONTAINER_EXITED', 137, 'OOMKilled']]);
    expect(decoded.containersStatuses[0].user.linux.supplementalGroups).toEqual(['4', '27', '65534']);
    const one = rpcs.ContainerStatus.responseSerialize!({ status: encodedContainerStatus(cs[1]!), info: {} });
    expect(one.equals(rpcs.ContainerStatus.responseSerialize!({ status: { ...containerStatusMessage(cs[1]!) }, info: {} }))).toBe(true);
  });

  it('reuse a record\'s status while its state holds, and never report a state it has left, even changed in place', () => {
    const p = pod('creating');
    const creating = encodedPodSandboxStatus(p);
    expect(encodedPodSandboxStatus(p)).toBe(creating);
    (p as { network?: unknown }).network = { ip: '10.88.0.9' };
    (p as { state: string }).state = 'ready';
    const ready = encodedPodSandboxStatus(p);
    expect(ready).not.toBe(creating);
    const status = (s: object) => client.PodSandboxStatus!.responseDeserialize(rpcs.PodSandboxStatus.responseSerialize!({ status: s, info: {}, containersStatuses: [], timestamp: '1' })).status;
    expect(status(ready)).toMatchObject({ state: 'SANDBOX_READY', network: { ip: '10.88.0.9' } });
    const c = full({ startedAt: '1764730001000000000' } as Partial<ContainerRecord>);
    const running = encodedContainerStatus(c);
    expect(encodedContainerStatus(c)).toBe(running);
    Object.assign(c, { finishedAt: '1764730002000000000', exitCode: 1, reason: 'Error' });
    const exited = encodedContainerStatus(c);
    const decoded = client.ContainerStatus!.responseDeserialize(rpcs.ContainerStatus.responseSerialize!({ status: exited, info: {} })).status;
    expect([decoded.state, decoded.exitCode, decoded.reason]).toEqual(['CONTAINER_EXITED', 1, 'Error']);
  });
});
