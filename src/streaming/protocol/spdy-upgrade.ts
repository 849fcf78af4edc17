// The server half of the HTTP → SPDY/3.1 upgrade, for a node:http server's 'upgrade' event:
// check the upgrade headers, negotiate the subprotocol, answer 101 with the chosen
// X-Stream-Protocol-Version, and hand the socket to a SpdyConnection. Refusals are answered
// with a plain-text HTTP error like apimachinery's (400 bad upgrade, 403 no common protocol).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { SpdyConnection, type SpdyConnectionOptions } from '../spdy/spdy-connection.js';
import {
  HEADER_ACCEPTED_PROTOCOL_VERSIONS,
  HEADER_PROTOCOL_VERSION,
  SPDY_31,
} from './constants.js';
import { UpgradeRefusedError, negotiateSubprotocol } from './negotiate.js';
import { httpDate } from '../../time.js';

export interface SpdyUpgradeResult {
  connection: SpdyConnection;
  protocol: string;
}

/** True when the request asks for SPDY/3.1 (as opposed to a WebSocket or no upgrade). */
export function isSpdyUpgradeRequest(req: IncomingMessage): boolean {
  const connection = String(req.headers.connection ?? '').toLowerCase();
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  return connection.includes('upgrade') && upgrade.includes(SPDY_31.toLowerCase());
}

/**
 * Validates and performs the upgrade. On refusal the HTTP error is written, the socket ended,
 * and the UpgradeRefusedError is thrown so the caller can log it.
 *
 * Attach the session (RemoteCommandSession.accept / new PortForwardSession) in the same tick:
 * a connection with no 'stream' listener refuses the client's streams, as it cannot know
 * whether anyone will ever take them.
 */
export function acceptSpdyUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  supportedProtocols: readonly string[],
  options: Omit<SpdyConnectionOptions, 'server' | 'initialData'> = {},
): SpdyUpgradeResult {
  let protocol: string;
  try {
    if (!isSpdyUpgradeRequest(req)) {
      throw new UpgradeRefusedError('unable to upgrade: missing upgrade headers in request (need Connection: Upgrade and Upgrade: SPDY/3.1)', 400);
    }
    protocol = negotiateSubprotocol(req.headers[HEADER_PROTOCOL_VERSION.toLowerCase()], supportedProtocols);
  } catch (err) {
    if (err instanceof UpgradeRefusedError) writeUpgradeRefusal(socket, err);
    throw err;
  }
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Connection: Upgrade\r\n' +
      `Upgrade: ${SPDY_31}\r\n` +
      `${HEADER_PROTOCOL_VERSION}: ${protocol}\r\n` +
      `Date: ${httpDate()}\r\n\r\n`,
  );
  const connection = new SpdyConnection(socket, { ...options, server: true, initialData: head });
  return { connection, protocol };
}

/** Writes the HTTP error for a refused upgrade and ends the socket. */
export function writeUpgradeRefusal(socket: Duplex, err: UpgradeRefusedError): void {
  const body = `${err.message}\n`;
  const reason = err.httpStatus === 403 ? 'Forbidden' : 'Bad Request';
  const accepted = err.httpStatus === 403
    ? err.acceptedProtocols.map((p) => `${HEADER_ACCEPTED_PROTOCOL_VERSIONS}: ${p}\r\n`).join('')
    : '';
  socket.end(
    `HTTP/1.1 ${err.httpStatus} ${reason}\r\n` +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      'X-Content-Type-Options: nosniff\r\n' +
      accepted +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
