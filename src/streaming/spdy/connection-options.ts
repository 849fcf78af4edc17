// Tunables of a SpdyConnection, with defaults that suit Kubernetes streaming: header blocks of
// a few hundred bytes, data in frames up to the protocol maximum.
import { MAX_FRAME_PAYLOAD } from './frames.js';

export interface SpdyConnectionOptions {
  /** Server side uses even stream and ping ids, the client odd ones (spdystream's rule). */
  server: boolean;
  /** Bytes read from the socket before the connection took it over (e.g. after the 101). */
  initialData?: Buffer;
  maxDataFrameLength?: number;
  maxControlFrameLength?: number;
  /** Cap on one decompressed header block. */
  maxHeaderBlockSize?: number;
  /** Largest DATA frame we send; writes are cut into frames of at most this size. */
  maxSendFrameLength?: number;
  /** Per-stream receive buffer before the socket is paused. */
  streamHighWaterMark?: number;
  /** How long close() waits for the peer to hang up before destroying the socket. */
  closeTimeoutMs?: number;
  /**
   * Close the connection after this long without a frame in either direction (kubelet's
   * stream idle timeout; spdystream's SetIdleTimeout). 0 disables it.
   */
  idleTimeoutMs?: number;
}

export const CONNECTION_DEFAULTS = {
  maxDataFrameLength: MAX_FRAME_PAYLOAD,
  maxControlFrameLength: 256 * 1024,
  maxHeaderBlockSize: 256 * 1024,
  maxSendFrameLength: 64 * 1024,
  streamHighWaterMark: 1024 * 1024,
  closeTimeoutMs: 5000,
  idleTimeoutMs: 0,
};

export type ResolvedConnectionOptions = typeof CONNECTION_DEFAULTS;
