// The registry client's HTTP: Node's own http/https, with one keep-alive pool for verified TLS,
// one for hosts configured insecure, and one for plain http. It was undici until issue 14:
// undici (its llhttp compiled to WebAssembly, its pools and its modules) stayed resident from the
// first pull for the daemon's whole life, 10-12 MiB of RSS (measured after a 25 MB download and
// malloc_trim: 62-66 MiB with undici, 52-53 with node:http); node:http is already loaded by the
// streaming server and costs nothing more.
//
// What undici did and this keeps: a deadline for the answer's headers (connection and TLS
// included), an inactivity deadline for the body, an AbortSignal that ends the request or its
// body, no redirect following (registry-transport.ts checks each hop), bounded header size
// (Node's 16 KiB), idle connections closed after a while, and each header as a string, or as an
// array when the registry sent it more than once (www-authenticate may offer several schemes).
//
// A blob's GET (RegistryRequest.blob) goes to blob-http.ts instead, under the same contract: its
// body is read from the socket without the copy Node's http makes of each chunk.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { getBlob } from './blob-http.js';
import { BODY_TIMEOUT, HEADERS_TIMEOUT, abortError, codedError } from './http-failures.js';

/** How long an idle pooled connection is kept. */
const KEEP_ALIVE_MS = 10_000;
/** An unwanted body (a 401's, a redirect's) is read to its end, to keep the connection, up to this much. */
const DISCARD_LIMIT = 64 << 10;
const DISCARD_DEADLINE_MS = 2000;

export interface RegistryResponse {
  statusCode: number;
  /** Lower-case names; a header sent more than once is an array. */
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export interface RegistryRequest {
  method: 'GET' | 'HEAD' | 'POST';
  headers?: Record<string, string>;
  /** A POST's form body. */
  body?: string;
  /** Skip TLS verification (hosts configured insecure only). */
  insecure: boolean;
  signal?: AbortSignal;
  /** The answer's status and headers must arrive within this long, connecting included. */
  headersTimeoutMs: number;
  /** The body may go this long without a byte; 0 for no limit (the caller watches it). */
  bodyTimeoutMs: number;
  /** A blob's GET: sent by blob-http.ts, which hands on the body without copying it. */
  blob?: boolean;
}

export class RegistryHttp {
  private pools: { secure: HttpsAgent; insecure: HttpsAgent; plain: HttpAgent } | undefined;

  private agent(url: URL, insecure: boolean): HttpAgent {
    // Idle sockets are unref'd by Node and closed after KEEP_ALIVE_MS, so pools made once serve
    // the daemon's life.
    this.pools ??= {
      secure: new HttpsAgent({ keepAlive: true, timeout: KEEP_ALIVE_MS }),
      insecure: new HttpsAgent({ keepAlive: true, timeout: KEEP_ALIVE_MS, rejectUnauthorized: false }),
      plain: new HttpAgent({ keepAlive: true, timeout: KEEP_ALIVE_MS }),
    };
    if (url.protocol === 'http:') return this.pools.plain;
    return insecure ? this.pools.insecure : this.pools.secure;
  }

  /** One request; resolves with the answer once its headers are in (any status), never following a redirect. */
  request(url: URL, opts: RegistryRequest): Promise<RegistryResponse> {
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (opts.blob && opts.method === 'GET') return getBlob(url, opts);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method: opts.method, headers: opts.headers, agent: this.agent(url, opts.insecure) });
      let res: IncomingMessage | undefined;
      const onAbort = () => {
        const err = abortError(signal!);
        req.destroy(err);
        res?.destroy(err);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const headersTimer = setTimeout(() => {
        req.destroy(codedError(`no answer within ${opts.headersTimeoutMs} ms`, HEADERS_TIMEOUT));
      }, opts.headersTimeoutMs);
      const done = () => {
        clearTimeout(headersTimer);
        signal?.removeEventListener('abort', onAbort);
      };
      // Kept for the request's life: a second 'error' with no listener would crash the daemon.
      req.on('error', (err) => {
        if (res) return;
        done();
        reject(err);
      });
      req.once('response', (r) => {
        res = r;
        clearTimeout(headersTimer);
        const socket = r.socket;
        // Whoever reads the body gets its error from the read; a body errored before anyone
        // reads it (a timeout, an abort) must not be an unhandled 'error' event.
        r.on('error', () => undefined);
        const onIdle = () => r.destroy(codedError(`no body bytes for ${opts.bodyTimeoutMs} ms`, BODY_TIMEOUT));
        // 0 also lifts the pool's idle timeout while the caller reads at its own pace.
        socket.setTimeout(opts.bodyTimeoutMs);
        if (opts.bodyTimeoutMs > 0) socket.on('timeout', onIdle);
        // The pool sets its own idle timeout again when the socket goes back to it.
        r.once('close', () => {
          done();
          socket.off('timeout', onIdle);
        });
        resolve({ statusCode: r.statusCode ?? 0, headers: headersOf(r), body: r });
      });
      req.end(opts.body);
    });
  }

  close(): Promise<void> {
    const pools = this.pools;
    this.pools = undefined;
    if (pools) for (const a of Object.values(pools)) a.destroy();
    return Promise.resolve();
  }
}

function headersOf(r: IncomingMessage): RegistryResponse['headers'] {
  const out: RegistryResponse['headers'] = {};
  for (const [name, values] of Object.entries(r.headersDistinct)) {
    if (values) out[name] = values.length === 1 ? values[0] : values;
  }
  return out;
}

/**
 * Drop a body nobody wants: read to its end when it is small and quick (so the connection can be
 * pooled), else closed.
 */
export function discardBody(body: Readable): Promise<void> {
  if (body.readableEnded || body.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let size = 0;
    const finish = () => {
      clearTimeout(timer);
      body.off('data', onData);
      resolve();
    };
    const timer = setTimeout(() => {
      body.destroy();
      finish();
    }, DISCARD_DEADLINE_MS);
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > DISCARD_LIMIT) {
        body.destroy();
        finish();
      }
    };
    body.on('data', onData);
    body.once('end', finish);
    body.once('close', finish);
    body.once('error', finish);
  });
}
