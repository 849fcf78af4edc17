// RemoteCommandIo over a SPDY remotecommand session (the streams kubectl/crictl open).
import type { RemoteCommandResult } from '../protocol/exec-status.js';
import type { RemoteCommandSession } from '../protocol/remote-command-session.js';
import type { TerminalSize } from '../protocol/resize-decoder.js';
import type { RemoteCommandIo } from './remote-io.js';

export class SpdyRemoteIo implements RemoteCommandIo {
  constructor(private readonly session: RemoteCommandSession) {
    // Data the client sends on a stream we never read must not stall the connection; errors on
    // a stream surface as the connection's close, which is handled by the caller.
    for (const s of [session.stdin, session.stdout, session.stderr, session.error]) s?.on('error', () => undefined);
    session.stdout?.resume();
    session.stderr?.resume();
    session.error.resume();
  }

  get stdin() {
    return this.session.stdin;
  }

  get stdout() {
    return this.session.stdout;
  }

  get stderr() {
    return this.session.stderr;
  }

  get closed(): Promise<unknown> {
    return this.session.closed;
  }

  onResize(listener: (size: TerminalSize) => void): void {
    this.session.on('resize', listener);
    if (this.session.lastSize) listener(this.session.lastSize);
  }

  finish(result: RemoteCommandResult): Promise<void> {
    return this.session.finish(result);
  }
}
