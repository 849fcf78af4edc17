// Terminal resize messages (remotecommand v3+): the client writes a stream of JSON objects
// {"Width":w,"Height":h} on the resize stream, back to back with no framing, read by kubelet
// with a Go json.Decoder. This splits the byte stream into top-level JSON values without
// assuming one per chunk or a newline between them, and validates each like Go's decoder into
// a struct of two uint16 fields (case-insensitive keys, unknown keys ignored).
import { InvalidArgumentError } from '../../errors.js';

export interface TerminalSize {
  width: number;
  height: number;
}

/** Largest single resize message we buffer; a real one is ~30 bytes. */
const MAX_MESSAGE = 64 * 1024;

export class ResizeDecoder {
  private pending = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private scanned = 0;
  private start = -1;

  /** Feeds bytes; returns every size completed by them. Throws on a malformed message. */
  push(chunk: Buffer | string): TerminalSize[] {
    this.pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const sizes: TerminalSize[] = [];
    for (let i = this.scanned; i < this.pending.length; i++) {
      const c = this.pending[i]!;
      if (this.start < 0) {
        if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue;
        if (c !== '{') throw new InvalidArgumentError(`resize message must be a JSON object, got ${JSON.stringify(c)}`);
        this.start = i;
        this.depth = 0;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth === 0) {
          sizes.push(parseTerminalSize(this.pending.slice(this.start, i + 1)));
          this.pending = this.pending.slice(i + 1);
          i = -1;
          this.start = -1;
        }
      }
    }
    this.scanned = this.pending.length;
    if (this.start >= 0 && this.pending.length - this.start > MAX_MESSAGE) {
      throw new InvalidArgumentError(`resize message longer than ${MAX_MESSAGE} bytes`);
    }
    return sizes;
  }
}

export function parseTerminalSize(text: string): TerminalSize {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`resize message is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError('resize message must be a JSON object with Width and Height');
  }
  const size: TerminalSize = { width: 0, height: 0 };
  for (const [key, raw] of Object.entries(value)) {
    const field = key.toLowerCase();
    if (field !== 'width' && field !== 'height') continue;
    if (raw === null) continue;
    if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 0 || raw > 0xffff) {
      throw new InvalidArgumentError(`resize ${key} ${JSON.stringify(raw)} is not an integer in 0..65535`);
    }
    size[field] = raw;
  }
  return size;
}
