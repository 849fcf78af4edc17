// The container events' fan-out: a pod's own events under its id, and a subscriber that throws
// never reaches the lifecycle operation that emitted the event, nor the other subscribers.
import { describe, expect, it } from 'vitest';
import type { SandboxRecord } from '../sandbox/sandbox-record.js';
import { ContainerEvents, type ContainerEvent } from './container-events.js';

const pod = { id: 'p'.repeat(64), state: 'ready' } as SandboxRecord;

describe('ContainerEvents', () => {
  it('sends a pod\'s own events under its id, with its record: made ready is created then started', () => {
    const events = new ContainerEvents();
    const seen: ContainerEvent[] = [];
    events.subscribe((e) => seen.push(e));
    events.emitPodEvent('ready', pod);
    events.emitPodEvent('stopped', pod);
    events.emitPodEvent('removed', pod);
    expect(seen.map((e) => e.type)).toEqual(['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
    expect(seen.every((e) => e.containerId === pod.id && e.podId === pod.id && e.pod === pod && /^\d+$/.test(e.createdAt))).toBe(true);
  });

  it('keeps a throwing subscriber from the emitter and from the subscribers after it', () => {
    const events = new ContainerEvents();
    const seen: string[] = [];
    events.subscribe(() => {
      throw new Error('stream gone');
    });
    const unsubscribe = events.subscribe((e) => seen.push(e.type));
    expect(() => events.emit({ containerId: 'c', podId: pod.id, type: 'CONTAINER_STOPPED_EVENT', createdAt: '1' })).not.toThrow();
    expect(seen).toEqual(['CONTAINER_STOPPED_EVENT']);
    unsubscribe();
    events.emitPodEvent('removed', pod);
    expect(seen).toEqual(['CONTAINER_STOPPED_EVENT']);
  });
});
