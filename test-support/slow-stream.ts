// A stream that yields its data in small pieces across event-loop turns, like a download.
import { Readable } from 'node:stream';

export function slowStream(data: Buffer, piece = 1024): Readable {
  let off = 0;
  return new Readable({
    read() {
      setImmediate(() => {
        if (off >= data.length) {
          this.push(null);
          return;
        }
        this.push(data.subarray(off, off + piece));
        off += piece;
      });
    },
  });
}
