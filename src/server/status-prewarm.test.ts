// Statuses encoded before the answer of the call that changed them, listing entries after it
// (status-prewarm.ts), each once, and found encoded by the calls that come after.
import { describe, expect, it } from 'vitest';
import { ContainerEvents } from '../container/container-events.js';
import type { ContainerRecord } from '../container/container-record.js';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { encodedContainerStatus, encodedPodSandboxStatus, listedContainer, listedPodSandbox } from './listed-messages.js';
import { prewarmOnLifecycleEvents } from './status-prewarm.js';

const POD_ID = 'p'.repeat(64);
const CONTAINER_ID = 'c'.repeat(64);
const nextTurn = () => new Promise((r) => setImmediate(r));

/** `rec` with a count of the reads of its config, which building its messages makes. */
function counted<T extends object>(rec: T): { rec: T; reads: () => number } {
  let reads = 0;
  const config = (rec as { config: unknown }).config;
  Object.defineProperty(rec, 'config', { get: () => (reads++, config), enumerable: true });
  return { rec, reads: () => reads };
}

const pod = () => counted({
  id: POD_ID, state: 'ready', createdAt: '1764730000123456789', runtimeHandler: 'runc',
  config: { metadata: { name: 'web-0', uid: 'uid-0', namespace: 'default', attempt: 0 }, labels: { app: 'web' }, annotations: {} },
} as unknown as SandboxRecord);

const container = () => counted({
  id: CONTAINER_ID, podId: POD_ID, created: true, createdAt: '1764730000123456789', startedAt: '1764730001000000000',
  imageName: 'registry.example/busybox:latest', imageId: `sha256:${'a'.repeat(64)}`,
  config: { metadata: { name: 'main', attempt: 0 }, image: { image: 'busybox' }, labels: {}, annotations: {} },
} as unknown as ContainerRecord);

describe('prewarmOnLifecycleEvents', () => {
  it('encodes a started container\'s status before the call that started it answers, and its listing entry after', async () => {
    const events = new ContainerEvents();
    const c = container();
    const looked: string[] = [];
    prewarmOnLifecycleEvents(events, { pod: () => undefined, container: (id) => (looked.push(id), c.rec) });
    // StartContainer's handler: the service emits the event and returns; the handler's
    // continuation then builds the answer.
    const start = async () => {
      events.emit({ containerId: CONTAINER_ID, podId: POD_ID, type: 'CONTAINER_STARTED_EVENT', createdAt: '1' });
      // Not inside emit: the service's own code goes on first.
      expect(c.reads()).toBe(0);
    };
    await start();
    // The answer would be written here: the status is encoded already, the listing entry not yet.
    expect(looked).toEqual([CONTAINER_ID]);
    const status = encodedContainerStatus(c.rec);
    const afterStatus = c.reads();
    expect(afterStatus).toBeGreaterThan(0);
    await nextTurn();
    expect(looked).toEqual([CONTAINER_ID, CONTAINER_ID]);
    const built = c.reads();
    expect(built).toBeGreaterThan(afterStatus);
    // ContainerStatus and ListContainers find both encoded: nothing is built again.
    const entry = listedContainer(c.rec);
    expect(c.reads()).toBe(built);
    expect(encodedContainerStatus(c.rec)).toBe(status);
    expect(listedContainer(c.rec)).toBe(entry);
  });

  it('encodes a ready pod\'s status and listing entry the same way', async () => {
    const events = new ContainerEvents();
    const p = pod();
    prewarmOnLifecycleEvents(events, { pod: (id) => (id === POD_ID ? p.rec : undefined), container: () => undefined });
    events.emitPodEvent('ready', p.rec);
    expect(p.reads()).toBe(0);
    await Promise.resolve();
    const statusBuilt = p.reads();
    expect(statusBuilt).toBeGreaterThan(0);
    encodedPodSandboxStatus(p.rec);
    expect(p.reads()).toBe(statusBuilt);
    await nextTurn();
    const built = p.reads();
    expect(built).toBeGreaterThan(statusBuilt);
    listedPodSandbox(p.rec);
    expect(p.reads()).toBe(built);
  });

  it('skips deletions and records gone by then, and never throws into the event loop', async () => {
    const events = new ContainerEvents();
    const looked: string[] = [];
    prewarmOnLifecycleEvents(events, {
      pod: (id) => { looked.push(id); throw new Error('lookup failed'); },
      container: (id) => (looked.push(id), undefined),
    });
    events.emit({ containerId: CONTAINER_ID, podId: POD_ID, type: 'CONTAINER_DELETED_EVENT', createdAt: '1' });
    events.emit({ containerId: CONTAINER_ID, podId: POD_ID, type: 'CONTAINER_STOPPED_EVENT', createdAt: '1' });
    events.emit({ containerId: POD_ID, podId: POD_ID, type: 'CONTAINER_STOPPED_EVENT', createdAt: '1' });
    await nextTurn();
    await nextTurn();
    // Each live event looked up twice (its status, then its listing entry), deletions never.
    expect(looked).toEqual([CONTAINER_ID, POD_ID, CONTAINER_ID, POD_ID]);
  });
});
