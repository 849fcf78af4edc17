// PING bookkeeping: our pings carry ids of our parity (server even, client odd, as in
// spdystream); a ping of the other parity is the peer's and must be echoed; an answer to one
// of ours settles its round-trip time.
import { SpdyConnectionClosedError } from './spdy-errors.js';

interface PendingPing {
  start: bigint;
  resolve: (ms: number) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class PingTracker {
  private nextId: number;
  private readonly pending = new Map<number, PendingPing>();

  constructor(private readonly server: boolean) {
    this.nextId = server ? 2 : 1;
  }

  /** Starts a ping: send(id) must put the PING frame on the wire. Resolves with the RTT in ms. */
  start(timeoutMs: number, send: (id: number) => void): Promise<number> {
    const id = this.nextId;
    this.nextId = this.nextId + 2 > 0xffffffff ? (this.server ? 2 : 1) : this.nextId + 2;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SpdyConnectionClosedError(`SPDY PING ${id} not answered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { start: process.hrtime.bigint(), resolve, reject, timer });
      send(id);
    });
  }

  /** True for ids of our parity: an answer to our ping rather than the peer's own. */
  isOurs(id: number): boolean {
    return id % 2 === (this.server ? 0 : 1);
  }

  answered(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(Number(process.hrtime.bigint() - p.start) / 1e6);
  }

  failAll(err: Error): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}
