import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../errors.js';
import { ResizeDecoder, parseTerminalSize } from './resize-decoder.js';

describe('ResizeDecoder', () => {
  it('splits back-to-back JSON objects delivered in arbitrary pieces', () => {
    const text = '{"Width":80,"Height":24}\n{"Width":120,"Height":40}{"Height":7,"Width":9,"Extra":{"x":"}"}}';
    for (const size of [1, 3, 7, text.length]) {
      const d = new ResizeDecoder();
      const got = [];
      for (let i = 0; i < text.length; i += size) got.push(...d.push(Buffer.from(text.slice(i, i + size))));
      expect(got).toEqual([{ width: 80, height: 24 }, { width: 120, height: 40 }, { width: 9, height: 7 }]);
    }
  });

  it('treats keys case-insensitively and missing fields as 0, like Go', () => {
    expect(parseTerminalSize('{"width":3}')).toEqual({ width: 3, height: 0 });
    expect(parseTerminalSize('{"WIDTH":3,"hEiGhT":4}')).toEqual({ width: 3, height: 4 });
  });

  it.each(['[1,2]', 'garbage', '{"Width":-1}', '{"Width":70000}', '{"Height":"10"}', '{"Width":1.5}'])('rejects %s', (bad) => {
    expect(() => new ResizeDecoder().push(bad)).toThrow(InvalidArgumentError);
  });

  it('refuses an endless unterminated message', () => {
    const d = new ResizeDecoder();
    expect(() => d.push('{"Width":' + ' '.repeat(70 * 1024))).toThrow(/longer than/);
  });
});
