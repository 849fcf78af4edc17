import { describe, expect, it } from 'vitest';
import { podRow, shortAge } from './pod-status.js';
import type { PlayedContainer, PlayedPod } from './state-store.js';

const ctr = (name: string, over: Partial<PlayedContainer> = {}): PlayedContainer => ({
  name, init: false, restartCount: 0, phase: 'running', started: true, ready: true, restarts: [], id: `id-${name}`, ...over,
});
const pod = (containers: PlayedContainer[], over: Partial<PlayedPod> = {}): PlayedPod => ({
  version: 1, name: 'web', namespace: 'default', uid: 'u', manifest: 'm.yaml', createdAt: 0, pod: {}, sources: { configMaps: {}, secrets: {} },
  options: { address: '', logRoot: '', backoffBaseMs: 1, backoffMaxMs: 1, resolvConf: '' }, volumes: [], sandboxId: 's', phase: 'Running', containers, ...over,
});

describe('kube ps rows', () => {
  it('shows kubectl\'s READY, STATUS, RESTARTS and AGE', () => {
    expect(podRow(pod([ctr('a'), ctr('b', { ready: false, restartCount: 2 })]), true, 75_000)).toEqual({
      namespace: 'default', name: 'web', ready: '1/2', status: 'Running', restarts: 2, age: '75s',
    });
    expect(podRow(pod([ctr('a', { phase: 'terminated', reason: 'CrashLoopBackOff', restartCount: 4, ready: false })]), true).status).toBe('CrashLoopBackOff');
    expect(podRow(pod([ctr('a', { phase: 'terminated', exitCode: 0, reason: 'Completed' })], { phase: 'Succeeded' }), true).status).toBe('Completed');
  });

  it('shows init progress, and Unknown when no supervisor keeps the pod', () => {
    const init = (name: string, over: Partial<PlayedContainer> = {}) => ctr(name, { init: true, ...over });
    const p = pod([init('i1', { phase: 'terminated', exitCode: 0 }), init('i2'), ctr('a', { id: undefined, phase: 'waiting', ready: false })]);
    expect(podRow(p, true)).toMatchObject({ ready: '0/1', status: 'Init:1/2' });
    expect(podRow(pod([init('i1', { phase: 'terminated', exitCode: 1, reason: 'CrashLoopBackOff', restartCount: 3 }), ctr('a')]), true))
      .toMatchObject({ status: 'Init:CrashLoopBackOff', restarts: 3 });
    expect(podRow(p, false).status).toBe('Unknown');
  });

  it('writes ages as kubectl does', () => {
    expect([shortAge(5_000), shortAge(119_000), shortAge(600_000), shortAge(3 * 3600_000), shortAge(3 * 86400_000)]).toEqual(['5s', '119s', '10m', '3h', '3d']);
  });
});
