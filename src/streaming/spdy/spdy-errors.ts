// Failure modes of a SPDY connection, each a CribError so the streaming server can log and map
// them like every other error. A protocol or limit error ends the whole connection (the shared
// zlib state is unrecoverable after one bad frame); a reset ends one stream.
import { InvalidArgumentError, ResourceExhaustedError, UnavailableError } from '../../errors.js';

/** The peer sent bytes that are not valid SPDY/3.1: the connection is closed with GOAWAY. */
export class SpdyProtocolError extends InvalidArgumentError {}

/** The peer sent a frame or header block larger than our configured limit. */
export class SpdyLimitError extends ResourceExhaustedError {}

/** The connection went away (socket closed, GOAWAY, local close) while a stream was in use. */
export class SpdyConnectionClosedError extends UnavailableError {}

/** The stream was reset (RST_STREAM) by the peer or locally. */
export class SpdyStreamResetError extends UnavailableError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}
