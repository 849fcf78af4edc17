// An HTTP proxy in front of a registry that misbehaves on demand, for pull fault tests. Each rule
// matches a method and a path regex and applies to its first `times` matching requests:
//   corrupt    – pass the response through with one body byte flipped (digest mismatch)
//   cut        – send headers and `afterBytes` body bytes, then drop the connection
//   error500   – answer 500 with a registry-style JSON error
//   stall      – send headers and `afterBytes` body bytes, then nothing, connection held open
//   hang       – answer nothing at all, not even headers, connection held open
//   trickle    – send headers and `afterBytes` body bytes, then the rest `trickleBytes` bytes
//                (default 1) every `trickleMs` (default 100): a body that keeps moving, slowly
//   notFound   – answer 404 with a registry-style JSON error
//   forbidden  – answer 403 DENIED with a registry-style JSON error
//   redirect   – answer 307 to `location` + the request's path and query (a CDN redirect)
//   pass       – forward untouched (with stripRange, forward without the Range header, as a
//                server that ignores Range would)
// It records every request (method, path, Range) so tests can count them.
import { request as httpRequest, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FaultAction = 'corrupt' | 'cut' | 'error500' | 'stall' | 'hang' | 'trickle' | 'notFound' | 'forbidden' | 'redirect' | 'pass';

export interface FaultRule {
  method?: string;
  path: RegExp;
  action: FaultAction;
  /** For cut, stall, trickle and corrupt: body bytes sent intact first (corrupt flips the byte at this index). */
  afterBytes?: number;
  /** For trickle: bytes sent per tick (default 1) and the time between ticks (default 100 ms). */
  trickleBytes?: number;
  trickleMs?: number;
  /** How many matching requests the rule applies to (default: all). */
  times?: number;
  /** Forward without the client's Range header. */
  stripRange?: boolean;
  /** For redirect: the origin to send the client to ("http://127.0.0.1:5001"). */
  location?: string;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  range?: string;
  /** Whether the request carried an Authorization header. */
  authorized: boolean;
  action: FaultAction | 'none';
  /** The connection closed before the response was complete (the client hung up, or a cut). */
  closedEarly: boolean;
}

export interface FaultProxy {
  /** "http://127.0.0.1:<port>" */
  url: string;
  /** "127.0.0.1:<port>" */
  host: string;
  requests: ProxiedRequest[];
  addRule(rule: FaultRule): void;
  clearRules(): void;
  /** Requests whose path matches. */
  count(path: string | RegExp, method?: string): number;
  stop(): Promise<void>;
}

function registryError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ errors: [{ code, message, detail: null }] });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Forward `up` to `res`: `first` bytes at once, then `perTick` bytes every `everyMs` until it ends. */
function trickle(up: IncomingMessage, res: ServerResponse, first: number, perTick: number, everyMs: number): void {
  const pending: Buffer[] = [];
  let upEnded = false;
  let passed = 0;
  up.on('data', (chunk: Buffer) => {
    const now = chunk.subarray(0, Math.max(0, first - passed));
    passed += now.length;
    if (now.length > 0) res.write(now);
    if (now.length < chunk.length) pending.push(chunk.subarray(now.length));
  });
  up.on('end', () => (upEnded = true));
  res.flushHeaders();
  const ticker = setInterval(() => {
    let want = perTick;
    const out: Buffer[] = [];
    while (want > 0 && pending.length > 0) {
      const head = pending[0]!;
      const part = head.subarray(0, want);
      out.push(part);
      want -= part.length;
      if (part.length === head.length) pending.shift();
      else pending[0] = head.subarray(part.length);
    }
    if (out.length > 0) res.write(Buffer.concat(out));
    if (pending.length === 0 && upEnded) {
      clearInterval(ticker);
      res.end();
    }
  }, everyMs);
  // The client gave up (or the proxy stops): stop sending and reading.
  res.on('close', () => {
    clearInterval(ticker);
    up.destroy();
  });
}

export async function startFaultProxy(targetUrl: string): Promise<FaultProxy> {
  const target = new URL(targetUrl);
  const rules: { rule: FaultRule; left: number }[] = [];
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  let selfUrl = '';

  const take = (req: IncomingMessage): FaultRule | undefined => {
    const path = req.url ?? '/';
    for (const r of rules) {
      if (r.left <= 0) continue;
      if (r.rule.method && r.rule.method.toUpperCase() !== req.method) continue;
      if (!r.rule.path.test(path)) continue;
      r.left--;
      return r.rule;
    }
    return undefined;
  };

  const server = createServer((req, res) => {
    const rule = take(req);
    const record: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', range: req.headers.range,
      authorized: req.headers.authorization !== undefined, action: rule?.action ?? 'none', closedEarly: false };
    requests.push(record);
    res.on('close', () => (record.closedEarly = !res.writableFinished));
    // The request is read and never answered; stop() closes the connection.
    if (rule?.action === 'hang') return;
    if (rule?.action === 'error500') return registryError(res, 500, 'UNKNOWN', 'injected server failure');
    if (rule?.action === 'notFound') return registryError(res, 404, 'BLOB_UNKNOWN', 'injected: not here');
    if (rule?.action === 'forbidden') return registryError(res, 403, 'DENIED', 'injected: requested access to the resource is denied');
    if (rule?.action === 'redirect') {
      res.writeHead(307, { location: `${rule.location ?? target.origin}${req.url ?? '/'}`, 'content-length': 0 });
      return void res.end();
    }
    const headers = { ...req.headers, host: target.host };
    if (rule?.stripRange) delete headers.range;
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (up) => {
      const outHeaders = { ...up.headers };
      // Upload locations and redirects name the registry; point them back at the proxy.
      if (typeof outHeaders.location === 'string') outHeaders.location = outHeaders.location.replace(target.origin, selfUrl);
      res.writeHead(up.statusCode ?? 502, outHeaders);
      const limit = rule?.afterBytes ?? 0;
      let sent = 0;
      if (!rule || rule.action === 'pass') {
        up.pipe(res);
        return;
      }
      if (rule.action === 'trickle') {
        trickle(up, res, limit, rule.trickleBytes ?? 1, rule.trickleMs ?? 100);
        return;
      }
      up.on('data', (chunk: Buffer) => {
        if (rule.action === 'corrupt') {
          if (sent <= limit && limit < sent + chunk.length) {
            chunk = Buffer.from(chunk);
            chunk[limit - sent] ^= 0xff;
          }
          sent += chunk.length;
          res.write(chunk);
          return;
        }
        // cut and stall: deliver up to `limit` bytes, then stop.
        if (sent >= limit) return;
        const part = chunk.subarray(0, limit - sent);
        sent += part.length;
        res.write(part);
        if (sent >= limit) {
          up.destroy();
          if (rule.action === 'cut') res.socket?.end(() => res.socket?.destroy());
          // stall: keep the connection open and silent until the client gives up.
        }
      });
      up.on('end', () => {
        if (rule.action === 'corrupt' || sent < limit) res.end();
        else if (rule.action === 'cut') res.socket?.destroy();
      });
      if (limit === 0 && rule.action === 'cut') {
        res.flushHeaders();
        up.destroy();
        setImmediate(() => res.socket?.destroy());
      }
      if (limit === 0 && rule.action === 'stall') {
        res.flushHeaders();
        up.destroy();
      }
    });
    upstream.on('error', () => {
      if (!res.headersSent) registryError(res, 502, 'UNAVAILABLE', 'proxy: upstream unreachable');
      else res.socket?.destroy();
    });
    req.pipe(upstream);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  selfUrl = `http://127.0.0.1:${port}`;
  return {
    url: selfUrl,
    host: `127.0.0.1:${port}`,
    requests,
    addRule: (rule) => rules.push({ rule, left: rule.times ?? Infinity }),
    clearRules: () => void rules.splice(0),
    count: (path, method) => requests.filter((r) =>
      (method === undefined || r.method === method) && (typeof path === 'string' ? r.path === path || r.path.startsWith(`${path}?`) : path.test(r.path))).length,
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
