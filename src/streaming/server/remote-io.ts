// What an exec or attach needs from a client connection, whatever the transport (SPDY streams
// or WebSocket channels): the client's input, the two outputs, terminal resizes, a way to report
// the outcome, and a signal that the client went away.
import type { Readable, Writable } from 'node:stream';
import type { RemoteCommandResult } from '../protocol/exec-status.js';
import type { TerminalSize } from '../protocol/resize-decoder.js';

export interface RemoteCommandIo {
  /** Bytes the client types; ends when the client closes its input. Absent without stdin. */
  readonly stdin: Readable | undefined;
  readonly stdout: Writable | undefined;
  /** Absent with a tty: the terminal merges both outputs onto stdout. */
  readonly stderr: Writable | undefined;
  onResize(listener: (size: TerminalSize) => void): void;
  /** Settles when the connection is gone (client hung up, or finish() completed). */
  readonly closed: Promise<unknown>;
  /** Reports the outcome the way the protocol does and closes the connection. */
  finish(result: RemoteCommandResult): Promise<void>;
}

/** What the client asked for (from the token's request). */
export interface StreamFlags {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}
