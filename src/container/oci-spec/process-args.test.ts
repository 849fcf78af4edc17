import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import { processArgs, workingDir } from './process-args.js';

describe('processArgs merges CRI command/args with the image Entrypoint/Cmd', () => {
  const cases: { name: string; command: string[]; args: string[]; image: { Entrypoint?: string[] | null; Cmd?: string[] | null }; want: string[] }[] = [
    { name: 'image entrypoint + cmd', command: [], args: [], image: { Entrypoint: ['/ep'], Cmd: ['-x'] }, want: ['/ep', '-x'] },
    { name: 'image cmd only', command: [], args: [], image: { Cmd: ['/bin/sh', '-c', 'echo'] }, want: ['/bin/sh', '-c', 'echo'] },
    { name: 'CRI command replaces entrypoint and drops cmd', command: ['/bin/true'], args: [], image: { Entrypoint: ['/ep'], Cmd: ['-x'] }, want: ['/bin/true'] },
    { name: 'CRI args replace cmd, keep entrypoint', command: [], args: ['-y', 'z'], image: { Entrypoint: ['/ep'], Cmd: ['-x'] }, want: ['/ep', '-y', 'z'] },
    { name: 'CRI command and args', command: ['/a'], args: ['b'], image: { Entrypoint: ['/ep'], Cmd: ['-x'] }, want: ['/a', 'b'] },
    { name: 'entrypoint [""] means none', command: [], args: [], image: { Entrypoint: [''], Cmd: ['/bin/sh'] }, want: ['/bin/sh'] },
    { name: 'null entrypoint/cmd with CRI args', command: [], args: ['/bin/ls'], image: { Entrypoint: null, Cmd: null }, want: ['/bin/ls'] },
  ];
  for (const c of cases) {
    it(c.name, () => expect(processArgs(c.command, c.args, c.image)).toEqual(c.want));
  }

  it('fails with InvalidArgument "no command specified" when nothing is left', () => {
    expect(() => processArgs([], [], { Entrypoint: null, Cmd: null })).toThrow(InvalidArgumentError);
    expect(() => processArgs([], [], undefined)).toThrow(/no command specified/);
    expect(() => processArgs([], [], { Entrypoint: [''] })).toThrow(/no command specified/);
  });

  it('refuses NUL bytes in arguments', () => {
    expect(() => processArgs(['/bin/sh', 'a\0b'], [], undefined)).toThrow(InvalidArgumentError);
  });
});

describe('workingDir', () => {
  it('prefers the CRI working_dir, then the image WorkingDir, then /', () => {
    expect(workingDir('/srv', { WorkingDir: '/app' })).toBe('/srv');
    expect(workingDir('', { WorkingDir: '/app' })).toBe('/app');
    expect(workingDir('', {})).toBe('/');
    expect(workingDir('', undefined)).toBe('/');
  });
  it('names the field of a relative directory', () => {
    expect(() => workingDir('srv', undefined)).toThrow(/working_dir "srv" must be an absolute path/);
    expect(() => workingDir('', { WorkingDir: 'app' })).toThrow(/image WorkingDir "app"/);
  });
});
