// Raw HTTP/2 for the tests that must send what node:http2 will not (endless header blocks, a
// request before acknowledging the server's SETTINGS, floods): frames built by hand, a gRPC request's
// headers as HPACK literals, and gRPC's length-prefixed messages.
import { encodeLiterals } from '../src/server/h2/hpack.js';

/** The client connection preface (RFC 9113 §3.4), and one frame: its 9-byte header, then the payload. */
export { PREFACE as H2_PREFACE, frame as h2Frame } from '../src/server/h2/connection.js';

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
