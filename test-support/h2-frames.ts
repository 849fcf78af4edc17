// Raw HTTP/2 for the tests that must send what node:http2 will not (endless header blocks, a
// request before acknowledging the server's SETTINGS, floods): frames built by hand, a gRPC request's
// headers as HPACK literals, and gRPC's length-prefixed messages.
import { encodeLiterals } from '../src/server/h2/hpack.js';

/** The client connection preface (RFC 9113 §3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** One frame: its 9-byte header, then `payload`. */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

/** The header block of a gRPC call to `path`, as literals that touch no HPACK table. */
export function grpcRequestHeaders(path: string, authority = 'localhost'): Buffer {
  return encodeLiterals([
    [':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', authority],
    ['content-type', 'application/grpc'], ['te', 'trailers'],
  ]);
}

/** A gRPC message as it goes in DATA frames: the compressed flag, its 4-byte length, the body. */
export function grpcMessage(body: Buffer, compressedFlag = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressedFlag;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}
