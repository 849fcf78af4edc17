// A connection to a crib-monitor's control socket (protocol 2, native/monitor/main.c): commands
// answered in order, one JSON line each, and exit events pushed in between. The connection
// closing is news too: a monitor that goes without an exit event died (or was never told to
// stay), which is how the daemon learns of it at once instead of at its next restart.
import type { Socket } from 'node:net';
import { DeadlineExceededError, UnavailableError } from '../errors.js';
import type { ExitRecord } from './container-runtime.js';
import { connectUnix } from './unix-connect.js';

/** Longer lines than any reply the monitor sends: a peer sending them is not our monitor. */
const MAX_LINE = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;

export interface MonitorReply {
  ok: boolean;
  error?: string;
  [key: string]: unknown;
}

export interface MonitorStatus {
  running: boolean;
  pid: number;
  exit: ExitRecord | null;
  exitFilePersisted: boolean;
}

interface Pending {
  resolve: (r: MonitorReply) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  settled: boolean;
}

export interface MonitorControlHandlers {
  onExit?: (exit: ExitRecord) => void;
  /** Called once when the connection is gone, whoever closed it. */
  onClose?: () => void;
}

export class MonitorControl {
  private buf = '';
  private readonly pending: Pending[] = [];
  private isClosed = false;

  private constructor(
    private readonly sock: Socket,
    readonly path: string,
    private readonly handlers: MonitorControlHandlers,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('error', () => undefined); // 'close' follows and says it all
    // The monitor is done with us (it exits): so are we, or 'close' would wait for our end.
    sock.on('end', () => sock.end());
    sock.on('close', () => this.onClosed());
    // One of these per live container: it must not keep the daemon's event loop alive.
    sock.unref();
  }

  /** Rejects with a UnixConnectError whose code says why (ENOENT, ECONNREFUSED...). */
  static async connect(path: string, handlers: MonitorControlHandlers = {}): Promise<MonitorControl> {
    return new MonitorControl(await connectUnix(path, 'monitor control socket'), path, handlers);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  request(cmd: Record<string, unknown>, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<MonitorReply> {
    if (this.isClosed) return Promise.reject(new UnavailableError(`monitor control socket ${this.path} is closed`));
    return new Promise((resolve, reject) => {
      const p: Pending = {
        resolve, reject, settled: false,
        timer: setTimeout(() => {
          // The slot stays queued: the late reply, when it comes, is still this command's.
          p.settled = true;
          reject(new DeadlineExceededError(`the container monitor did not answer "${String(cmd.cmd)}" within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.pending.push(p);
      this.sock.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  async status(timeoutMs?: number): Promise<MonitorStatus> {
    const r = await this.request({ cmd: 'status' }, timeoutMs);
    if (!r.ok) throw new UnavailableError(`the container monitor refused "status": ${r.error ?? 'no reason given'}`);
    return r as unknown as MonitorStatus;
  }

  close(): void {
    this.sock.destroy();
  }

  private onData(d: string): void {
    this.buf += d;
    for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.sock.destroy();
        return;
      }
      if (msg.event === 'exit') {
        this.handlers.onExit?.(msg.exit as ExitRecord);
      } else if (!('event' in msg)) {
        const p = this.pending.shift();
        if (p && !p.settled) {
          p.settled = true;
          clearTimeout(p.timer);
          p.resolve(msg as MonitorReply);
        }
      }
    }
    if (this.buf.length > MAX_LINE) this.sock.destroy();
  }

  private onClosed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      if (!p.settled) p.reject(new UnavailableError(`the container monitor closed its control socket ${this.path}`));
    }
    this.handlers.onClose?.();
  }
}
