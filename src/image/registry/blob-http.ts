// A blob's GET (registry-http.ts sends every other request through Node's http): on a connection
// of its own, closed after the body, with the response read straight from the socket into
// buffers that become the body's chunks (http1-response.ts parses it). Node's http client copies
// each body chunk out of the socket's read on the event loop; for a 100 MB pull that copy, its
// allocations and their garbage cost the daemon's main thread more than everything else it does
// for the pull. The connection is not pooled: a blob is megabytes, a connection setup is a
// round trip or two.
//
// The contract is RegistryHttp.request's: resolves once the status and headers are in (any
// status, no redirect followed), within headersTimeoutMs of the start; the body may then go
// bodyTimeoutMs without a byte; the signal ends both. A body the connection ends early errors
// with ECONNRESET (blob-stream.ts resumes it); a malformed response is an error the transport
// does not retry.
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { tls } from '../../sys/lazy-module.js';
import { nextReadSize, openReader, returnReadBuffers, takeReadBuffer } from '../../sys/read-buffers.js';
import { markSoleView } from '../../sys/sole-view.js';
import { HEADER_NAME, Http1ResponseParser, type ResponseHead } from './http1-response.js';
import { BODY_TIMEOUT, BODY_TRUNCATED, HEADERS_TIMEOUT, abortError, codedError } from './http-failures.js';
import type { RegistryRequest, RegistryResponse } from './registry-http.js';

/** Plain TCP reads start at the smaller size, and grow to the larger while they fill their
 * buffers (sys/read-buffers.ts nextReadSize). */
const TCP_READ_BYTES = { min: 64 << 10, max: 1 << 20 };
/** TLS hands over decrypted bytes a record (at most 16 KiB) at a time. */
const TLS_READ_BYTES = { min: 16 << 10, max: 16 << 10 };
/** A read filling less than this share of its buffer is copied out, and the buffer read into again. */
const SMALL_READ_SHARE = 4;

const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The request's bytes; a header name or value that could split the request is refused. */
function requestHead(url: URL, headers: Record<string, string>): string {
  let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name) || !FIELD_VALUE.test(value)) {
      throw codedError(`the request header ${JSON.stringify(name)} has a character HTTP does not allow`, 'ERR_INVALID_CHAR');
    }
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'connection' || lower === 'content-length' || lower === 'transfer-encoding') continue;
    head += `${name}: ${value}\r\n`;
  }
  return `${head}connection: close\r\n\r\n`;
}

export function getBlob(url: URL, opts: RegistryRequest): Promise<RegistryResponse> {
  const { signal } = opts;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  let request: string;
  try {
    request = requestHead(url, opts.headers ?? {});
  } catch (err) {
    return Promise.reject(err);
  }
  const secure = url.protocol === 'https:';
  const readSizes = { ...(secure ? TLS_READ_BYTES : TCP_READ_BYTES), smallShare: SMALL_READ_SHARE };
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port || (secure ? 443 : 80));

  return new Promise((resolve, reject) => {
    let body: Readable | undefined;
    let settled = false;
    const closeReader = openReader();
    let readBuffer: Uint8Array = takeReadBuffer(readSizes.min);
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      // The body was whole: what the connection does after it is no one's concern.
      if (parser.complete) return;
      if (!settled) {
        settled = true;
        reject(err);
      } else {
        body?.destroy(err);
      }
    };
    const parser = new Http1ResponseParser({
      head: (head: ResponseHead) => {
        clearTimeout(headersTimer);
        settled = true;
        body = new Readable({
          // The socket pauses while the reader is behind (the read callback returned false).
          read: () => socket.resume(),
          destroy: (err, callback) => {
            cleanup();
            socket.destroy();
            callback(err);
          },
        });
        // Whoever reads the body gets its error from the read; one errored before anyone reads
        // it must not be an unhandled 'error' event.
        body.on('error', () => undefined);
        socket.setTimeout(opts.bodyTimeoutMs);
        resolve({ statusCode: head.statusCode, headers: head.headers, body });
      },
      body: (chunk) => {
        if (!body!.push(markSoleView(chunk))) paused = true;
      },
      end: () => {
        cleanup();
        body!.push(null);
        socket.destroy();
      },
    });
    let paused = false;
    const onread = {
      buffer: () => readBuffer,
      callback: (n: number, buf: Uint8Array): boolean => {
        // A buffer a read filled well moves on with the body, and the next read gets another
        // (sys/read-buffers.ts: one an unpack thread is done with, else a new one); a small read
        // is copied out, so a slow link does not pin a buffer per few bytes. The next buffer's
        // size follows what the reads deliver.
        const size = nextReadSize(buf.byteLength, n, readSizes);
        let data = buf;
        if (n * SMALL_READ_SHARE < buf.byteLength) {
          data = Uint8Array.prototype.slice.call(buf, 0, n);
          if (size !== buf.byteLength) {
            returnReadBuffers([buf.buffer as ArrayBuffer]);
            readBuffer = takeReadBuffer(size);
          }
        } else {
          readBuffer = takeReadBuffer(size);
        }
        paused = false;
        try {
          parser.feed(data, n);
        } catch (err) {
          fail(err as Error);
          return false;
        }
        return !paused;
      },
    };
    const socket: Socket = secure
      // Node's tls.connect takes onread as net.connect does (its type declarations omit it).
      ? tls().connect({
        host, port, onread,
        servername: isIP(host) ? undefined : host,
        rejectUnauthorized: !opts.insecure,
        ALPNProtocols: ['http/1.1'],
      } as ConnectionOptions)
      : netConnect({ host, port, onread });
    // Header values are bytes (latin1), as Node's http writes them.
    socket.once(secure ? 'secureConnect' : 'connect', () => socket.write(request, 'latin1'));
    socket.on('end', () => {
      try {
        parser.finish();
      } catch (err) {
        fail(err as Error);
      }
    });
    socket.on('error', fail);
    socket.on('close', () => {
      if (!parser.complete) fail(codedError('the registry closed the connection', BODY_TRUNCATED));
    });
    socket.on('timeout', () => fail(codedError(`no body bytes for ${opts.bodyTimeoutMs} ms`, BODY_TIMEOUT)));
    const headersTimer = setTimeout(() => fail(codedError(`no answer within ${opts.headersTimeoutMs} ms`, HEADERS_TIMEOUT)), opts.headersTimeoutMs);
    const onAbort = () => fail(abortError(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    function cleanup(): void {
      closeReader();
      clearTimeout(headersTimer);
      signal?.removeEventListener('abort', onAbort);
      socket.setTimeout(0);
    }
  });
}
