// The HPACK decoder must decode exactly what real encoders send (the RFC 7541 Appendix C vectors,
// and hpack.js's stateful, Huffman-coding compressor over a few hundred gRPC-like requests that keep
// its dynamic table evicting), must refuse every malformed block with COMPRESSION_ERROR and an
// over-large decoded list with ENHANCE_YOUR_CALM before decoding it all, and encodeLiterals must
// produce blocks that decode back without touching the dynamic table.
import hpack from 'hpack.js';
import { describe, expect, it } from 'vitest';
import { H2_COMPRESSION_ERROR, H2_ENHANCE_YOUR_CALM, HpackDecoder, HpackError, encodeLiterals } from './hpack.js';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const flat = (pairs: [string, string][]) => pairs.flat();

function newDecoder(maxTableBytes = 4096, maxHeaderListBytes = 1 << 20): HpackDecoder {
  return new HpackDecoder({ maxTableBytes, maxHeaderListBytes });
}

function decodeError(decoder: HpackDecoder, block: Buffer): HpackError {
  try {
    decoder.decode(block);
  } catch (err) {
    expect(err).toBeInstanceOf(HpackError);
    return err as HpackError;
  }
  throw new Error(`block ${block.toString('hex')} decoded without an error`);
}

/** The dynamic table holds exactly these entries, newest first (index 62 onwards). */
function expectTable(decoder: HpackDecoder, entries: [string, string][]): void {
  const indexes = Buffer.from(entries.map((_, i) => 0x80 | (62 + i)));
  expect(decoder.decode(indexes)).toEqual(flat(entries));
  // Indexed fields change nothing, so probing one past the end leaves the decoder usable.
  expect(decodeError(decoder, Buffer.from([0x80 | (62 + entries.length)])).code).toBe(H2_COMPRESSION_ERROR);
}

/** §5.1 integer: prefixBits wide, the byte's other bits from flags. */
function integer(flags: number, prefixBits: number, value: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [flags | value];
  const bytes = [flags | max];
  let rest = value - max;
  for (; rest >= 0x80; rest >>>= 7) bytes.push((rest & 0x7f) | 0x80);
  bytes.push(rest);
  return bytes;
}

/** A literal with incremental indexing and a literal name, no Huffman. */
function literalWithIndexing(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x40, ...integer(0, 7, name.length)]), Buffer.from(name, 'latin1'),
    Buffer.from(integer(0, 7, value.length)), Buffer.from(value, 'latin1'),
  ]);
}

describe('HpackDecoder on the RFC 7541 Appendix C examples', () => {
  it('C.2: literal with indexing, without indexing, never indexed, and an indexed field', () => {
    let decoder = newDecoder();
    expect(decoder.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')))
      .toEqual(['custom-key', 'custom-header']);
    expectTable(decoder, [['custom-key', 'custom-header']]);

    decoder = newDecoder();
    expect(decoder.decode(hex('040c 2f73 616d 706c 652f 7061 7468'))).toEqual([':path', '/sample/path']);
    expectTable(decoder, []);

    decoder = newDecoder();
    expect(decoder.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74'))).toEqual(['password', 'secret']);
    expectTable(decoder, []);

    decoder = newDecoder();
    expect(decoder.decode(hex('82'))).toEqual([':method', 'GET']);
    expectTable(decoder, []);
  });

  const requests: [string, string][][] = [
    [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']],
    [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']],
    [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
  ];
  const requestTables: [string, string][][] = [
    [[':authority', 'www.example.com']],
    [['cache-control', 'no-cache'], [':authority', 'www.example.com']],
    [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']],
  ];

  it.each([
    ['C.3, without Huffman', [
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ]],
    ['C.4, with Huffman', [
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ]],
  ])('%s: three requests on one connection, the table growing across them', (_, blocks) => {
    const decoder = newDecoder();
    for (let i = 0; i < 3; i++) {
      expect(decoder.decode(hex(blocks[i]!))).toEqual(flat(requests[i]!));
      expectTable(decoder, requestTables[i]!);
    }
  });

  const date1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
  const date2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
  const location = 'https://www.example.com';
  const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
  const responses: [string, string][][] = [
    [[':status', '302'], ['cache-control', 'private'], ['date', date1], ['location', location]],
    [[':status', '307'], ['cache-control', 'private'], ['date', date1], ['location', location]],
    [[':status', '200'], ['cache-control', 'private'], ['date', date2], ['location', location],
      ['content-encoding', 'gzip'], ['set-cookie', cookie]],
  ];
  const responseTables: [string, string][][] = [
    [['location', location], ['date', date1], ['cache-control', 'private'], [':status', '302']],
    [[':status', '307'], ['location', location], ['date', date1], ['cache-control', 'private']],
    [['set-cookie', cookie], ['content-encoding', 'gzip'], ['date', date2]],
  ];

  it.each([
    ['C.5, without Huffman', [
      '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120'
      + '474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '4803 3330 37c1 c0bf',
      '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738'
      + '666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765'
      + '3d33 3630 303b 2076 6572 7369 6f6e 3d31',
    ]],
    ['C.6, with Huffman', [
      '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718'
      + '63c7 8f0b 97c8 e9ae 82ae 43d3',
      '4883 640e ffc1 c0bf',
      '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7'
      + 'b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
    ]],
  ])('%s: three responses through a 256-byte table, evicting', (_, blocks) => {
    const decoder = newDecoder(256);
    for (let i = 0; i < 3; i++) {
      expect(decoder.decode(hex(blocks[i]!))).toEqual(flat(responses[i]!));
      expectTable(decoder, responseTables[i]!);
    }
  });
});

/** xorshift32: the same pseudo-random sequence on every run. */
function random(seed: number): (below: number) => number {
  let state = seed | 0 || 1;
  return (below) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % below;
  };
}

describe('HpackDecoder against hpack.js', () => {
  it('has the static table hpack.js has', () => {
    const reference = hpack.decompressor.create({ table: { maxSize: 4096 } });
    const decoder = newDecoder();
    for (let index = 1; index <= 61; index++) {
      reference.write(Buffer.from([0x80 | index]));
      reference.execute();
      const field = reference.read()!;
      expect(decoder.decode(Buffer.from([0x80 | index]))).toEqual([field.name, field.value]);
    }
    expect(decodeError(decoder, Buffer.from([0x80 | 62])).code).toBe(H2_COMPRESSION_ERROR);
  });

  it('decodes a few hundred gRPC-like requests from its stateful Huffman-coding compressor, in sequence', () => {
    const next = random(0x5eed);
    const pick = <T>(items: readonly T[]): T => items[next(items.length)]!;
    const text = (length: number, highBytes: boolean): string => {
      let out = '';
      for (let i = 0; i < length; i++) {
        out += String.fromCharCode(highBytes && next(8) === 0 ? 0x80 + next(0x80) : 0x20 + next(0x5f));
      }
      return out;
    };
    const methods = ['Version', 'RunPodSandbox', 'ListContainers', 'ContainerStatus', 'ExecSync', 'ImageFsInfo', 'PullImage'];
    const compressor = hpack.compressor.create({ table: { maxSize: 4096 } });
    const decoder = newDecoder();
    // The same blocks through hpack.js's decoder, to compare dynamic tables at the end.
    const reference = hpack.decompressor.create({ table: { maxSize: 4096 } });
    for (let request = 0; request < 400; request++) {
      const fields: { name: string; value: string; neverIndex: boolean }[] = [];
      const add = (name: string, value: string, neverIndex = next(10) === 0) => fields.push({ name, value, neverIndex });
      add(':method', 'POST');
      add(':scheme', pick(['http', 'https']));
      add(':path', `/runtime.v1.${pick(['RuntimeService', 'ImageService'])}/${pick(methods)}`);
      add(':authority', pick(['localhost', '/run/crib/crib.sock', '127.0.0.1:10010']));
      add('content-type', 'application/grpc');
      add('user-agent', pick(['grpc-go/1.65.0', 'grpc-node-js/1.14.7', 'grpc-go/1.58.3']));
      add('te', 'trailers');
      if (next(2) === 0) add('grpc-timeout', `${1 + next(99_999_999)}${pick(['H', 'M', 'S', 'm', 'u', 'n'])}`);
      if (next(3) === 0) add('grpc-accept-encoding', 'identity,deflate,gzip');
      if (next(2) === 0) add('x-request-id', text(8 + next(40), false));
      if (next(4) === 0) add('x-trace-bin', text(1 + next(100), true));
      if (next(5) === 0) add(`x-long-${next(6)}`, text(200 + next(2800), next(2) === 0));
      if (next(40) === 0) add('x-huge', text(4100 + next(1000), false)); // larger than the whole table
      if (next(6) === 0) add('authorization', `Bearer ${text(30, false)}`, true);
      if (next(8) === 0) add('accept-encoding', 'gzip, deflate'); // a full static match
      compressor.write(fields);
      const block = compressor.read()!;
      expect(decoder.decode(block)).toEqual(fields.flatMap((field) => [field.name, field.value]));
      reference.write(block);
      reference.execute();
      while (reference.read());
    }
    // Both tables end with the same entries, and the stream did use the table.
    let entries = 0;
    for (; entries < 64; entries++) {
      try {
        decoder.decode(Buffer.from([0x80 | (62 + entries)]));
      } catch {
        break;
      }
    }
    expect(entries).toBeGreaterThan(1);
    const indexes = Buffer.from(Array.from({ length: entries }, (_, k) => 0x80 | (62 + k)));
    reference.write(indexes);
    reference.execute();
    const referenceFields: string[] = [];
    for (let field = reference.read(); field; field = reference.read()) referenceFields.push(field.name, field.value);
    expect(decoder.decode(indexes)).toEqual(referenceFields);
    expect(() => {
      reference.write(Buffer.from([0x80 | (62 + entries)]));
      reference.execute();
    }).toThrow(/OOB/);
  });

  it('decodes every Huffman symbol, alone (each with its own padding) and all in one string', () => {
    const compressor = hpack.compressor.create({ table: { maxSize: 4096 } });
    const fields = [{ name: 'x-all', value: '', neverIndex: true }];
    for (let byte = 0; byte < 256; byte++) {
      fields[0]!.value += String.fromCharCode(byte);
      fields.push({ name: 'x', value: String.fromCharCode(byte), neverIndex: true });
    }
    compressor.write(fields);
    const block = compressor.read()!;
    // Never indexed, literal name (0x10), then the name with the Huffman bit set.
    expect(block[0]).toBe(0x10);
    expect(block[1]! & 0x80).toBe(0x80);
    expect(newDecoder().decode(block)).toEqual(fields.flatMap((field) => [field.name, field.value]));
  });
});

describe('HpackDecoder refuses malformed blocks with COMPRESSION_ERROR', () => {
  const cases: [string, string, RegExp][] = [
    ['an indexed field with index 0', '80', /index 0/],
    ['an index past the static table when the dynamic table is empty', 'be', /index 62 is past the end/],
    ['a literal whose name index is past the table', '7e 01 61', /index 62 is past the end/],
    ['an integer whose prefix is full and the block ends', 'ff', /integer runs past the end/],
    ['an integer that ends on a continuation byte', 'ff 80', /integer runs past the end/],
    ['a truncated size update', '3f', /integer runs past the end/],
    ['an integer with a fifth continuation byte', 'ff 80 80 80 80 01', /over 2\^28/],
    ['an integer with five continuation bytes all set', 'ff ff ff ff ff 0f', /over 2\^28/],
    ['a literal name string past the end of the block', '00 05 61 62', /string literal of 5 bytes runs past the end/],
    ['a literal value string one byte past the end of the block', '00 01 61 02 62', /string literal of 2 bytes runs past the end/],
    ['a Huffman string past the end of the block', '00 01 61 83 07', /string literal of 3 bytes runs past the end/],
    ['a block that ends before the literal name', '40', /ends before a string literal/],
    ['a block that ends before the literal value', '00 01 61', /ends before a string literal/],
    ['Huffman padding of 8 bits', '00 01 61 81 ff', /8 bits of padding/],
    ['Huffman padding of 11 bits after a symbol', '00 01 61 82 07 ff', /11 bits of padding/],
    ['Huffman padding that is not all ones', '00 01 61 81 00', /not the high bits of EOS/],
    ['Huffman padding that is partly ones', '00 01 61 81 05', /not the high bits of EOS/],
    ['an EOS symbol in a Huffman string', '00 01 61 84 ff ff ff ff', /EOS/],
    ['an EOS symbol after other symbols', '00 01 61 85 07 ff ff ff ff', /EOS/],
    ['a dynamic table size update above the announced size', '3f e2 1f', /4097 bytes, above the 4096/],
    ['a dynamic table size update after a field', '82 20', /size update after a header field/],
  ];
  it.each(cases)('%s', (_, block, message) => {
    const err = decodeError(newDecoder(), hex(block));
    expect(err.code).toBe(H2_COMPRESSION_ERROR);
    expect(err.message).toMatch(message);
  });

  it('accepts what those cases border on', () => {
    expect(newDecoder().decode(hex('00 01 61 81 07'))).toEqual(['a', '0']); // '0' then 3 bits of EOS
    expect(newDecoder().decode(hex('00 01 61 80'))).toEqual(['a', '']); // empty Huffman string
    expect(newDecoder().decode(hex('3f e1 1f 82'))).toEqual([':method', 'GET']); // size update to exactly 4096
    // Four continuation bytes are allowed: this one parses, then names an index past the table.
    expect(decodeError(newDecoder(), hex('ff 80 80 80 01')).message).toMatch(/index 2097279 is past the end/);
  });
});

describe('HpackDecoder dynamic table', () => {
  it('empties the table for an entry larger than it, and does not add that entry', () => {
    const decoder = newDecoder(256);
    decoder.decode(literalWithIndexing('x-a', 'a'));
    decoder.decode(literalWithIndexing('x-b', 'b'));
    expectTable(decoder, [['x-b', 'b'], ['x-a', 'a']]);
    const big = 'v'.repeat(256 - 32 - 3 + 1); // 257 bytes with its name and overhead
    expect(decoder.decode(literalWithIndexing('x-c', big))).toEqual(['x-c', big]);
    expectTable(decoder, []);
    // One that fits exactly is added.
    const exact = 'v'.repeat(256 - 32 - 3); // 256
    decoder.decode(literalWithIndexing('x-d', exact));
    expectTable(decoder, [['x-d', exact]]);
  });

  it('evicts on a size update at the start of a block, and allows several there', () => {
    const decoder = newDecoder();
    decoder.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d')); // C.3.1, :authority (57)
    decoder.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865')); // C.3.2, cache-control (53)
    expect(decoder.decode(Buffer.from([0x3f, 57 - 31]))).toEqual([]); // to 57: the older entry goes
    expectTable(decoder, [['cache-control', 'no-cache']]);
    // Under the reduced limit, an entry that no longer fits beside the other evicts it.
    decoder.decode(literalWithIndexing('x-e', 'e'));
    expectTable(decoder, [['x-e', 'e']]);
    expect(decoder.decode(hex('20 3f e1 1f 82'))).toEqual([':method', 'GET']); // to 0, then back to 4096
    expectTable(decoder, []);
  });

  it('keeps 62 as the newest entry as the ring wraps many times over', () => {
    const decoder = newDecoder(4096);
    for (let i = 0; i < 1000; i++) {
      decoder.decode(literalWithIndexing(`x-${i}`, 'v'.repeat(i % 50)));
      if (i % 97 === 0 || i === 999) {
        const expected: [string, string][] = [];
        let bytes = 0;
        for (let j = i; j >= 0; j--) {
          bytes += `x-${j}`.length + (j % 50) + 32;
          if (bytes > 4096) break;
          expected.push([`x-${j}`, 'v'.repeat(j % 50)]);
        }
        const indexes = Buffer.from(expected.flatMap((_, k) => integer(0x80, 7, 62 + k)));
        expect(decoder.decode(indexes)).toEqual(flat(expected));
        expect(decodeError(decoder, Buffer.from(integer(0x80, 7, 62 + expected.length))).code).toBe(H2_COMPRESSION_ERROR);
      }
    }
  });
});

describe('HpackDecoder bounds the decoded header list', () => {
  it('counts every field, pseudo-headers too, at name + value + 32, up to the limit inclusive', () => {
    // :method GET costs 7 + 3 + 32 = 42.
    expect(newDecoder(4096, 84).decode(hex('82 82'))).toEqual([':method', 'GET', ':method', 'GET']);
    const err = decodeError(newDecoder(4096, 84), hex('82 82 82'));
    expect(err.code).toBe(H2_ENHANCE_YOUR_CALM);
    expect(err.message).toMatch(/over 84 bytes/);
    // References to the dynamic table count their entry's size: 3 + 60 + 32 = 95 each here.
    const entry = literalWithIndexing('x-a', 'v'.repeat(60));
    expect(newDecoder(4096, 285).decode(Buffer.concat([entry, hex('be be')]))).toHaveLength(6);
    expect(decodeError(newDecoder(4096, 284), Buffer.concat([entry, hex('be be')])).code).toBe(H2_ENHANCE_YOUR_CALM);
    // Literals count as well.
    expect(newDecoder(4096, 40).decode(hex('00 01 61 07 62 62 62 62 62 62 62'))).toEqual(['a', 'bbbbbbb']); // 40
    expect(decodeError(newDecoder(4096, 39), hex('00 01 61 07 62 62 62 62 62 62 62')).code).toBe(H2_ENHANCE_YOUR_CALM);
  });

  it('refuses an HPACK bomb (one large entry referenced over and over) as soon as it crosses the limit', () => {
    const entry = literalWithIndexing('x-big', 'b'.repeat(4000));
    // 100000 references would decode to 400 MB; the trailing index 0 would be a COMPRESSION_ERROR
    // if the decoder read that far.
    const bomb = Buffer.concat([entry, Buffer.alloc(100_000, 0x80 | 62), Buffer.from([0x80])]);
    const err = decodeError(newDecoder(4096, 65536), bomb);
    expect(err.code).toBe(H2_ENHANCE_YOUR_CALM);
    expect(err.message).toMatch(/65536/);
  });
});

describe('encodeLiterals', () => {
  it('writes literals without indexing, with literal names and no Huffman', () => {
    expect(encodeLiterals([['a', 'b']])).toEqual(hex('00 01 61 01 62'));
    expect(encodeLiterals([])).toEqual(Buffer.alloc(0));
    // A length of 127 fills the 7-bit prefix and takes a continuation byte of 0.
    expect(encodeLiterals([['n', 'v'.repeat(127)]]).subarray(0, 5)).toEqual(hex('00 01 6e 7f 00'));
  });

  it('decodes back to its input, and leaves the dynamic table empty', () => {
    const fields: [string, string][] = [
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-status', '13'],
      ['grpc-message', 'caf\u00e9 \u00ff\u0080 latin1'],
      ['x-empty', ''],
      [`x-${'n'.repeat(200)}`, 'long name'],
      ['x-126', 'v'.repeat(126)],
      ['x-127', 'v'.repeat(127)],
      ['x-128', 'v'.repeat(128)],
      ['x-big', 'w'.repeat(20_000)],
    ];
    const block = encodeLiterals(fields);
    const decoder = newDecoder();
    expect(decoder.decode(block)).toEqual(flat(fields));
    expectTable(decoder, []);

    // hpack.js reads it the same way.
    const reference = hpack.decompressor.create({ table: { maxSize: 4096 } });
    reference.write(block);
    reference.execute();
    const decoded: [string, string][] = [];
    for (let field = reference.read(); field; field = reference.read()) decoded.push([field.name, field.value]);
    expect(decoded).toEqual(fields);
  });
});
