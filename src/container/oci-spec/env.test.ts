import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import { DEFAULT_PATH, containerEnv } from './env.js';

const kv = (key: string, value: string) => ({ key, value: Buffer.from(value) });

describe('containerEnv', () => {
  const cases: { name: string; image?: string[]; cri: { key: string; value: Buffer }[]; want: string[] }[] = [
    { name: 'defaults: PATH and HOSTNAME', image: undefined, cri: [], want: [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=web-0'] },
    { name: 'image PATH replaces the default in place', image: ['PATH=/opt/bin', 'A=1'], cri: [], want: ['PATH=/opt/bin', 'HOSTNAME=web-0', 'A=1'] },
    {
      name: 'CRI envs win over the image by key',
      image: ['A=1', 'B=2'],
      cri: [kv('B', 'cri'), kv('C', '3')],
      want: [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=web-0', 'A=1', 'B=cri', 'C=3'],
    },
    { name: 'CRI PATH and HOSTNAME override', image: [], cri: [kv('PATH', '/x'), kv('HOSTNAME', 'h')], want: ['PATH=/x', 'HOSTNAME=h'] },
    { name: 'image "K" without = unsets K', image: ['A=1', 'A'], cri: [], want: [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=web-0'] },
    { name: 'values may contain =', image: [], cri: [kv('Q', 'a=b=c')], want: [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=web-0', 'Q=a=b=c'] },
  ];
  for (const c of cases) it(c.name, () => expect(containerEnv(c.image, c.cri, 'web-0')).toEqual(c.want));

  it('rejects an invalid variable name, naming it', () => {
    expect(() => containerEnv([], [kv('', 'x')], 'h')).toThrow(InvalidArgumentError);
    expect(() => containerEnv([], [kv('A=B', 'x')], 'h')).toThrow(/"A=B"/);
    expect(() => containerEnv([], [kv('A', 'x\0y')], 'h')).toThrow(/value of A/);
  });
});
