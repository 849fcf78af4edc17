import { describe, expect, it } from 'vitest';
import { emptySources } from './config-sources.js';
import { containerEnv, expand, expandAll } from './env.js';

const pod = { name: 'web', namespace: 'prod', uid: 'u-1', podIp: '10.0.0.7', nodeName: 'node1' };

describe('container env', () => {
  it('resolves fieldRefs to the pod\'s name, namespace, uid, IP and node', () => {
    const env = containerEnv([
      { name: 'N', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
      { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    ], pod, emptySources(), 'c');
    expect(env).toEqual([
      { key: 'N', value: 'web' }, { key: 'NS', value: 'prod' }, { key: 'UID', value: 'u-1' }, { key: 'IP', value: '10.0.0.7' }, { key: 'NODE', value: 'node1' },
    ]);
  });

  it('expands $(VAR) from earlier variables only, keeps unknown references, and reads $$ as $', () => {
    const env = containerEnv([
      { name: 'A', value: 'x' },
      { name: 'B', value: '$(A)-$(C)-$$(A)' },
      { name: 'C', value: 'c' },
      { name: 'A', value: 'y' },
    ], pod, emptySources(), 'c');
    expect(env).toEqual([{ key: 'A', value: 'y' }, { key: 'B', value: 'x-$(C)-$(A)' }, { key: 'C', value: 'c' }]);
    expect(expandAll(['echo $(A) $(B)', '$(NOPE)'], env)).toEqual(['echo y x-$(C)-$(A)', '$(NOPE)']);
    expect(expand('$(unterminated', new Map())).toBe('$(unterminated');
  });

  it('reads ConfigMap and Secret keys given on the command line, and says which is missing', () => {
    const sources = emptySources();
    sources.configMaps.set('cfg', new Map([['k', Buffer.from('v')]]));
    sources.secrets.set('sec', new Map([['t', Buffer.from('s3')]]));
    expect(containerEnv([
      { name: 'K', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'k' } } },
      { name: 'T', valueFrom: { secretKeyRef: { name: 'sec', key: 't' } } },
      { name: 'O', valueFrom: { configMapKeyRef: { name: 'gone', key: 'k', optional: true } } },
    ], pod, sources, 'c')).toEqual([{ key: 'K', value: 'v' }, { key: 'T', value: 's3' }]);
    expect(() => containerEnv([{ name: 'X', valueFrom: { configMapKeyRef: { name: 'gone', key: 'k' } } }], pod, sources, 'containers[app]'))
      .toThrow('containers[app].env[0].valueFrom.configMapKeyRef: ConfigMap "gone" was not given: pass its manifest with --configmap FILE');
    expect(() => containerEnv([{ name: 'X', valueFrom: { secretKeyRef: { name: 'sec', key: 'nope' } } }], pod, sources, 'c'))
      .toThrow('Secret "sec" has no key "nope"');
  });
});
