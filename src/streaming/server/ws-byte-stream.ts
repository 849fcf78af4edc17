// A WebSocket as a byte stream, for a protocol tunneled through it (SPDY for port-forward,
// "SPDY/3.1+portforward.k8s.io"): every write goes out as one binary message, and the payloads
// of the messages that come in are read back to back. Ending the stream closes the WebSocket
// with 1000 (normal closure): ws's own createWebSocketStream closes without a status code, which
// client-go's tunnel reads as an error (1005) instead of the end of the session.
import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

const WS_NORMAL_CLOSURE = 1000;
const WS_UNSUPPORTED_DATA = 1003;

export function webSocketByteStream(ws: WebSocket): Duplex {
  const stream = new Duplex({
    read() {
      ws.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      ws.send(chunk, { binary: true }, cb);
    },
    final(cb) {
      ws.close(WS_NORMAL_CLOSURE);
      cb();
    },
    destroy(err, cb) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) {
        if (err) ws.terminate();
        else ws.close(WS_NORMAL_CLOSURE);
      }
      cb(err);
    },
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      ws.close(WS_UNSUPPORTED_DATA, 'the tunnel carries binary messages only');
      stream.destroy(new Error('a text message arrived in a binary tunnel'));
      return;
    }
    if (!stream.push(data)) ws.pause();
  });
  ws.on('close', () => stream.push(null));
  ws.on('error', (err) => stream.destroy(err));
  return stream;
}
